// The hostile test program in TypeScript: misbehaves as its `behaviour` setting says, so the
// sandbox's limits are tested with a real JavaScript component (the Rust one is
// plugins/test-programs/hostile): `loop`, `alloc` (1 GiB), `throw`, `output` (an oversized
// decision), `http` (a request to `url`), `env` (what the language offers to read it: no
// environment API, only globals). Anything else: a well-behaved skip.

import { configOr, exported, skip, type Content, type Decision, type VideoPlan } from '../../../sdk-ts/index.ts';

export const plan = exported('plan', (_content: Content, _draft: VideoPlan[]): Decision | Promise<Decision> => {
  switch (configOr('behaviour', 'ok')) {
    case 'loop': {
      let n = 0;
      for (;;) n = (n + 1) | 0;
    }
    case 'alloc': {
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < 64; i += 1) {
        const chunk = new Uint8Array(16 << 20);
        for (let j = 0; j < chunk.length; j += 4096) chunk[j] = 1;
        chunks.push(chunk);
      }
      return skip(`allocated ${chunks.length} chunks`);
    }
    case 'throw':
      throw new TypeError('hostile plugin threw on purpose');
    case 'output':
      return skip('x'.repeat(4 << 20));
    case 'http':
      return (async () => {
        const url = configOr('url', 'http://example.com/');
        try {
          const response = await fetch(url, { method: 'POST', body: '{}' });
          return skip(`http answered ${response.status}`);
        } catch (e) {
          return skip(`http: ${e}`);
        }
      })();
    case 'env':
      // The JavaScript engine offers no environment; the globals are all it could read.
      return skip(`env: ${Object.keys(globalThis).filter((k) => /env|secret|key/i.test(k)).join(',')}`);
    default:
      return skip('behaved');
  }
});
