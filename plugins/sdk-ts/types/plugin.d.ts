/// <reference path="./interfaces/vidhook-plugin-host.d.ts" />
/// <reference path="./interfaces/vidhook-plugin-types.d.ts" />
declare module 'vidhook:plugin/plugin@0.1.2' {
  export type Content = import('vidhook:plugin/types@0.1.2').Content;
  export type VideoPlan = import('vidhook:plugin/types@0.1.2').VideoPlan;
  export type Decision = import('vidhook:plugin/types@0.1.2').Decision;
  export type PluginError = import('vidhook:plugin/types@0.1.2').PluginError;
  export type * as VidhookPluginHost012 from 'vidhook:plugin/host@0.1.2'; // import vidhook:plugin/host@0.1.2
  export type * as VidhookPluginTypes012 from 'vidhook:plugin/types@0.1.2'; // import vidhook:plugin/types@0.1.2
  /**
  * `draft` is the plan produced by the previous plugin in the source's chain (empty for the
  * first). Return `generate` with the (possibly amended) plans, or `skip`.
  */
  export function plan(content: Content, draft: Array<VideoPlan>): Decision;
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}
