/// <reference path="./interfaces/vidhook-plugin-host.d.ts" />
/// <reference path="./interfaces/vidhook-plugin-types.d.ts" />
declare module 'vidhook:plugin/digest@0.1.2' {
  export type Content = import('vidhook:plugin/types@0.1.2').Content;
  export type Decision = import('vidhook:plugin/types@0.1.2').Decision;
  export type PluginError = import('vidhook:plugin/types@0.1.2').PluginError;
  export type * as VidhookPluginHost012 from 'vidhook:plugin/host@0.1.2'; // import vidhook:plugin/host@0.1.2
  export type * as VidhookPluginTypes012 from 'vidhook:plugin/types@0.1.2'; // import vidhook:plugin/types@0.1.2
  /**
  * `items`: the source's items published since the previous tick, oldest first (at most 100).
  * Return `generate` with one plan (the digest's video), or `skip` (nothing worth a video).
  */
  export function digest(items: Array<Content>): Decision;
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}
