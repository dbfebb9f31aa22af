// Copy the shared timeline palette (ptort_lab/viz/palette.json, the source of truth) into src/logic/palette.json.
//
//   node scripts/sync-palette.mjs           copy when the two differ (the build runs this before tsc)
//   node scripts/sync-palette.mjs --check   exit 1 when they differ (the tests run this)
//
// The extension keeps a committed copy so that it also builds outside this repository (where the Python package
// is not next to it); tests/extension/test_logic.py checks that the copies agree.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = resolve(here, '..', '..', '..', 'ptort_lab', 'viz', 'palette.json');
const copy = resolve(here, '..', 'src', 'logic', 'palette.json');
const check = process.argv.includes('--check');

if (!existsSync(source)) {
  console.log(`sync-palette: ${source} not found (building outside the repository); keeping src/logic/palette.json`);
  process.exit(0);
}
const want = readFileSync(source, 'utf8');
JSON.parse(want); // a broken palette fails here, with the parser's message, not later in the bundle
const have = existsSync(copy) ? readFileSync(copy, 'utf8') : '';
if (want === have) {
  process.exit(0);
}
if (check) {
  console.error(
    'sync-palette: src/logic/palette.json differs from ptort_lab/viz/palette.json: run `jlpm sync:palette`'
  );
  process.exit(1);
}
writeFileSync(copy, want);
console.log('sync-palette: updated src/logic/palette.json from ptort_lab/viz/palette.json');
