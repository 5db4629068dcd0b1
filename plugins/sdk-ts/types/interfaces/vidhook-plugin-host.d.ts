declare module 'vidhook:plugin/host@0.1.2' {
  /**
   * A log line, stored with the render and shown by `vidhook plugin test`.
   */
  export function log(level: Level, message: string): void;
  /**
   * Renders the editor-configured Handlebars template `name` (strict mode) with the JSON object
   * `context-json`. Errors carry Handlebars' message (unknown template, missing variable).
   */
  export function render(name: string, contextJson: string): string;
  /**
   * A per-plugin setting from the plugin's manifest/source configuration.
   */
  export function config(key: string): string | undefined;
  /**
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
