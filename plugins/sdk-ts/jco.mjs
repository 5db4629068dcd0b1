// Runs jco's CLI (from the node_modules the plugin resolves, walking up from the working folder)
// with the host's filesystem visible to the WebAssembly tools jco runs inside Node: jco 1.35.0
// starts them with no preopened directory, so every path they open fails with ENOENT.
// `vidhook plugin build` runs this file; it passes everything after its own path to jco.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

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
