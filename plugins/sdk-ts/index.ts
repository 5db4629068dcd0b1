// The vidhook plugin SDK for TypeScript: the types generated from `wit/` (types/, by
// `jco guest-types`) and what the Rust SDK offers — speaking-time estimates, fitting a script to
// the video model's audio limit, rendering editor templates with a JSON context, settings and
// logging — with the same rules, so a plugin plans the same whatever language it is written in.
//
// A plugin module exports the world's functions through `exported`, which ties an uncaught
// exception's stack to the render's logs before the run fails:
//
//   import { exported, skip, type Content, type VideoPlan } from '../vidhook/index.ts';
//   export const plan = exported('plan', (content: Content, draft: VideoPlan[]) =>
//     skip(`not yet: ${content.title}`));

import * as host from 'vidhook:plugin/host@0.1.2';
import type {
  Content,
  Decision,
  PluginError,
  Resolution,
  Speech,
  TooLong,
  VideoPlan,
} from 'vidhook:plugin/types@0.1.2';

export type { Content, Decision, PluginError, Resolution, Speech, TooLong, VideoPlan };
import { trim } from './text.ts';
export * as text from './text.ts';
export * as locale from './locale.ts';

/**
 * A typed failure: thrown from a plugin function, it becomes the `plugin-error` the host
 * categorises (componentize-js returns a thrown value's `payload` as the result's error).
 */
export class PluginFailure extends Error {
  readonly payload: PluginError;
  constructor(payload: PluginError) {
    super(`${payload.tag}: ${payload.val}`);
    this.payload = payload;
  }
}

/** The content cannot be turned into a video (e.g. an empty body). */
export const invalidContent = (message: string) =>
  new PluginFailure({ tag: 'invalid-content', val: message });
/** An editor template failed to render. */
export const templateError = (message: string) => new PluginFailure({ tag: 'template', val: message });
/** The plugin's configuration is missing or wrong. */
export const configError = (message: string) => new PluginFailure({ tag: 'config', val: message });
/** Anything else. */
export const internalError = (message: string) => new PluginFailure({ tag: 'internal', val: message });

/** Make no video; the reason is shown to people. */
export const skip = (reason: string): Decision => ({ tag: 'skip', val: reason });
/** Make these videos. */
export const generate = (plans: VideoPlan[]): Decision => ({ tag: 'generate', val: plans });

/**
 * Wraps one of the world's functions for export: a `PluginFailure` is the run's typed error; any
 * other exception is logged with its stack (so it reaches the render's logs under the plugin's
 * name@version) and fails the run. The function may be `async` (to `await fetch(…)`, which goes
 * through wasi:http to the hosts the manifest names): the host waits for its promise. A promise
 * that rejects cannot carry a typed error (componentize-js aborts the run instead): its reason,
 * a `PluginFailure`'s included, is logged at error level before the run fails.
 */
export function exported<A extends unknown[], R extends Decision | Promise<Decision>>(
  name: string,
  f: (...args: A) => R,
): (...args: A) => R {
  const logged = (e: unknown, typed: boolean): never => {
    if (!(typed && e instanceof PluginFailure)) {
      const detail = e instanceof Error ? `${e}\n${e.stack ?? ''}` : String(e);
      host.log('error', `uncaught exception in ${name}: ${detail}`);
    }
    throw e;
  };
  return (...args: A): R => {
    try {
      const result = f(...args);
      return (result instanceof Promise ? result.catch((e) => logged(e, false)) : result) as R;
    } catch (e) {
      return logged(e, true);
    }
  };
}

/**
 * The longest narration, in seconds, the source's video hosts accept at a resolution: what the
 * host says (the reserved settings `vidhook.max_audio_seconds.720p` and `….1080p`), else
 * OmniHuman v1.5's documented limits (60 s at 720p, 30 s at 1080p).
 */
export function maxAudioSeconds(resolution: Resolution): number {
  const [key, documented] =
    resolution === 'p720'
      ? ['vidhook.max_audio_seconds.720p', 60.0]
      : ['vidhook.max_audio_seconds.1080p', 30.0];
  const value = host.config(key);
  const seconds = value === undefined ? NaN : parseNumber(value);
  return seconds > 0 ? seconds : (documented as number);
}

/** Parses "720p" / "1080p" as written in configuration. */
export function parseResolution(value: string): Resolution {
  switch (trim(value)) {
    case '720p':
      return 'p720';
    case '1080p':
      return 'p1080';
    default:
      throw configError(`resolution must be "720p" or "1080p", not ${JSON.stringify(value)}`);
  }
}

/** Renders an editor template with a context (an object, serialised as JSON). */
export function render(template: string, context: unknown): string {
  return renderJson(template, JSON.stringify(context));
}

/** Renders an editor template with a context already serialised as JSON. */
export function renderJson(template: string, contextJson: string): string {
  try {
    return host.render(template, contextJson);
  } catch (e) {
    const message = (e as { payload?: unknown }).payload ?? String(e);
    throw templateError(`template ${JSON.stringify(template)}: ${message}`);
  }
}

/**
 * The CMS's fields (`content.fieldsJson`) as JSON text to splice into a context, unchanged (so
 * numbers keep their exact form), or `null` when they are not JSON.
 */
export function fieldsJson(content: Content): string {
  try {
    JSON.parse(content.fieldsJson);
    return content.fieldsJson;
  } catch {
    return 'null';
  }
}

/** A setting from the plugin's configuration, or `fallback` when it is not set. */
export function configOr(key: string, fallback: string): string {
  return host.config(key) ?? fallback;
}

/** A numeric setting; a value that does not parse is a configuration error, not a default. */
export function configNumber(key: string, fallback: number): number {
  const raw = host.config(key);
  if (raw === undefined) return fallback;
  const value = parseNumber(raw);
  if (Number.isNaN(value) && !/^[+-]?nan$/i.test(trim(raw))) {
    throw configError(`${key} must be a number, not ${JSON.stringify(raw)}`);
  }
  return value;
}

/** A number as Rust's `f64` parser reads it (no hex, no empty string). NaN when it does not. */
function parseNumber(raw: string): number {
  const s = trim(raw);
  if (/^[+-]?(inf|infinity)$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/i.test(s)) return NaN;
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) ? Number(s) : NaN;
}


/** Logs a line at a level (stored with the render, shown by `vidhook plugin test`). */
export const log = (level: host.Level, message: string) => host.log(level, message);
/** Logs at info level. */
export const info = (message: string) => host.log('info', message);
/** A raw setting (the manifest's `[config]`, overridden by the source's). */
export const config = (key: string): string | undefined => host.config(key);
