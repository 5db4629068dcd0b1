/// <reference path="./interfaces/vidhook-plugin-host.d.ts" />
/// <reference path="./interfaces/vidhook-plugin-types.d.ts" />
declare module 'vidhook:plugin/shortening-plugin@0.1.2' {
  export type Content = import('vidhook:plugin/types@0.1.2').Content;
  export type VideoPlan = import('vidhook:plugin/types@0.1.2').VideoPlan;
  export type Decision = import('vidhook:plugin/types@0.1.2').Decision;
  export type PluginError = import('vidhook:plugin/types@0.1.2').PluginError;
  export type TooLong = import('vidhook:plugin/types@0.1.2').TooLong;
  export type * as VidhookPluginHost012 from 'vidhook:plugin/host@0.1.2'; // import vidhook:plugin/host@0.1.2
  export type * as VidhookPluginTypes012 from 'vidhook:plugin/types@0.1.2'; // import vidhook:plugin/types@0.1.2
  /**
  * As in the `plugin` world.
  */
  export function plan(content: Content, draft: Array<VideoPlan>): Decision;
  /**
  * Return `generate` with one plan whose narration fits `too-long.limit-seconds` (the host
  * synthesises and measures it again), or `skip`.
  */
  export function shorten(content: Content, plan: VideoPlan, tooLong: TooLong): Decision;
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}
