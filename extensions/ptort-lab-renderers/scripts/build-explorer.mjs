// Bundle the explorer view (lib/explorer.js, from `tsc`) and its styles into one ES module for anywidget:
// ptort_lab/notebook/static/explorer.js and explorer.css, committed so that the Python package needs no Node.
//
//   node scripts/build-explorer.mjs           write both files
//   node scripts/build-explorer.mjs --check   exit 1 when the committed files differ from a fresh build
//
// The same TimelineView and logic modules as the JupyterLab renderers; rspack (the extension's bundler) does it.
import { rspack } from '@rspack/core';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'fs';
import { tmpdir } from 'os';
import path from 'path';
import { fileURLToPath } from 'url';

const EXT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STATIC = path.resolve(EXT, '..', '..', 'ptort_lab', 'notebook', 'static');
const check = process.argv.includes('--check');
const work = mkdtempSync(path.join(tmpdir(), 'ptort-explorer-'));

const config = {
  mode: 'production',
  context: EXT,
  entry: './lib/explorer.js',
  target: ['web', 'es2020'],
  devtool: false,
  experiments: { outputModule: true },
  output: { path: work, filename: 'explorer.js', module: true, library: { type: 'module' }, chunkFormat: 'module' },
  optimization: { minimize: true, moduleIds: 'deterministic', chunkIds: 'deterministic' },
  performance: { hints: false }
};

const stats = await new Promise((resolve, reject) => rspack(config, (err, s) => (err ? reject(err) : resolve(s))));
if (stats.hasErrors()) {
  console.error(stats.toString({ all: false, errors: true }));
  process.exit(1);
}
const banner = '// ptort_lab explorer view: built from extensions/ptort-lab-renderers by scripts/build-explorer.mjs.\n';
const js = banner + readFileSync(path.join(work, 'explorer.js'), 'utf8');
const css =
  '/* ptort_lab explorer styles: extensions/ptort-lab-renderers/style/{base,explorer}.css */\n' +
  readFileSync(path.join(EXT, 'style', 'base.css'), 'utf8') +
  readFileSync(path.join(EXT, 'style', 'explorer.css'), 'utf8');
rmSync(work, { recursive: true, force: true });

const outputs = [
  [path.join(STATIC, 'explorer.js'), js],
  [path.join(STATIC, 'explorer.css'), css]
];
if (check) {
  const stale = outputs.filter(([file, text]) => !existsSync(file) || readFileSync(file, 'utf8') !== text);
  for (const [file] of stale) {
    console.error(`${path.relative(process.cwd(), file)} is out of date: run extensions/build.sh`);
  }
  process.exit(stale.length ? 1 : 0);
}
for (const [file, text] of outputs) {
  writeFileSync(file, text);
  console.log(`wrote ${path.relative(process.cwd(), file)} (${Math.round(text.length / 1024)} KiB)`);
}
