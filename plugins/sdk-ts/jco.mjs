// Runs jco's CLI (from the node_modules the plugin resolves, walking up from the working folder)
// with the host's filesystem visible to the WebAssembly tools jco runs inside Node: jco 1.35.0
// starts them with no preopened directory, so every path they open fails with ENOENT.
// `vidhook plugin build` runs this file; it passes everything after its own path to jco.
//
// It also speeds up the bindings componentize-js 0.23.0 generates: before each string goes to the
// host, they count its UTF-8 bytes in a JavaScript loop, which the sandboxed engine (no JIT) runs
// at some 2,000 wasm instructions a character: 2.5 million for a 1 KB script. The driver swaps
// that loop for the engine's native encoder as componentize-js writes the bindings out (same
// bytes, same allocation); bindings of another shape are left as they are, with a warning.
import fs from 'node:fs/promises';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const SLOW_LENGTH = /  let len = 0;\n  let codepoints = 0;\n[^]*?\n  const res = \{ ptr, len, codepoints \};/;
const NATIVE_LENGTH = `  const bytes = TEXT_ENCODER_UTF8.encode(s);
  const len = bytes.length;
  const ptr = realloc(0, 0, 1, len);
  new Uint8Array(memory.buffer, ptr, len).set(bytes);
  const res = { ptr, len };`;
const writeFile = fs.writeFile;
fs.writeFile = (path, data, ...rest) => {
  if (String(path).endsWith('initializer.js') && typeof data === 'string') {
    if (SLOW_LENGTH.test(data)) {
      data = data.replace(SLOW_LENGTH, NATIVE_LENGTH);
    } else {
      console.error('vidhook: the bindings are not as componentize-js 0.23.0 writes them; left unchanged');
    }
  }
  return writeFile(path, data, ...rest);
};
syncBuiltinESMExports();

const require = createRequire(join(process.cwd(), 'package.json'));
const root = (entry) => require.resolve(entry).replace(/dist[\\/].*$/, '');
const jco = root('@bytecodealliance/jco');
for (const tool of [jco, root('@bytecodealliance/jco-transpile')]) {
  const shim = createRequire(join(tool, 'package.json')).resolve('@bytecodealliance/preview2-shim/filesystem');
  const { _setPreopens } = await import(pathToFileURL(shim));
  _setPreopens({ '/': '/' });
}
const cli = join(jco, 'dist', 'jco.js');
process.argv.splice(1, 1, cli);
await import(pathToFileURL(cli));
