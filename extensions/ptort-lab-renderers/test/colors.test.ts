import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';

import { buildModel, Slice } from '../src/logic/trace';
import {
  MAX_LEGEND_ENTRIES,
  PALETTE,
  hashString,
  legendEntries,
  namedColor,
  pipeOf,
  sliceColor,
  tileColor
} from '../src/logic/colors';
import { fixture } from './helpers';

const bundle = fixture('trace.json');
const pipeline = buildModel(bundle.runs.pipeline);
const dataParallel = buildModel(bundle.runs['data-parallel']);

function mk(name: string, lane = 'AIV0.V', index: any = 0, start = 0): Slice {
  return {
    start,
    end: start + 1,
    name,
    kind: 'span',
    lane,
    process: 'p',
    index,
    taskId: 1,
    bytes: 8,
    startCycles: start,
    endCycles: start + 1
  };
}

test('the palette is the shared one: the copy in src/logic equals ptort_lab/viz/palette.json', () => {
  const shared = path.resolve(__dirname, '..', '..', '..', '..', 'ptort_lab', 'viz', 'palette.json');
  if (!fs.existsSync(shared)) {
    return; // built outside the repository: tests/extension/test_logic.py checks the copies there
  }
  assert.deepEqual(PALETTE, JSON.parse(fs.readFileSync(shared, 'utf8')));
});

test('FNV-1a hash: the published test vectors (the Python timeline must hash names the same way)', () => {
  assert.equal(hashString(''), 0x811c9dc5);
  assert.equal(hashString('a'), 0xe40c292c);
  assert.equal(hashString('foobar'), 0xbf9cf968);
});

test("colour by op: the palette's fixed op colours, a stable hashed colour otherwise, grey stalls", () => {
  const ops = Object.keys(PALETTE.ops);
  assert.deepEqual(ops, ['load', 'store', 'mul', 'matmul', 'cast', 'add', 'sub', 'div', 'exp', 'max']);
  assert.equal(new Set(ops.map(o => sliceColor(mk(o)))).size, ops.length);
  assert.equal(sliceColor(mk('load')), '#4e79a7');
  assert.equal(sliceColor(mk('store')), '#f28e2b');
  // rowsum is not listed: categorical[fnv1a("rowsum") % 10], the same wherever it runs.
  assert.equal(sliceColor(mk('rowsum')), PALETTE.categorical[hashString('rowsum') % 10]);
  assert.equal(sliceColor(mk('rowsum', 'AIV1.MTE2', 3)), sliceColor(mk('rowsum')));
  assert.equal(sliceColor({ ...mk('mul'), kind: 'stall' }), '#b9b9b9');
  assert.equal(namedColor('constructor', PALETTE.ops), PALETTE.categorical[hashString('constructor') % 10]);
});

test("colour by pipe: the lane's pipe (after the last dot, any case); stage lanes hash", () => {
  assert.equal(pipeOf('AIV0.MTE2'), 'MTE2');
  assert.equal(pipeOf('core1.AIC0.mte1'), 'MTE1');
  assert.equal(pipeOf('loader'), 'loader');
  assert.equal(pipeOf('my.stage'), 'my.stage');
  assert.equal(sliceColor(mk('load', 'AIV0.MTE2'), 'pipe'), PALETTE.pipes.MTE2);
  assert.equal(sliceColor(mk('mul', 'AIV1.V'), 'pipe'), '#59a14f');
  assert.equal(sliceColor(mk('store', 'AIV1.MTE3'), 'pipe'), '#f28e2b');
  assert.equal(sliceColor(mk('x', 'loader'), 'pipe'), PALETTE.categorical[hashString('loader') % 10]);
});

test('colour by tile: integers cycle through the 10 categorical colours, other indices hash', () => {
  assert.equal(sliceColor(mk('mul', 'V', 0), 'tile'), '#4e79a7');
  assert.equal(sliceColor(mk('mul', 'V', 13), 'tile'), '#e15759');
  assert.equal(tileColor(-1), '#56b4e9');
  assert.equal(tileColor(10), tileColor(0));
  assert.equal(
    sliceColor(mk('mul', 'V', { tuple: [1, 2] }), 'tile'),
    sliceColor(mk('add', 'V', { tuple: [1, 2] }), 'tile')
  );
  assert.equal(tileColor(undefined), tileColor(null));
});

test('legend by op: ops in order of first use, then stall, kernel launch and makespan', () => {
  // Worked out from the fixture: load at 10,900, cast at 11,521, store at 11,681, mul at 13,363.
  assert.deepEqual(
    legendEntries([pipeline], 'op').map(e => [e.label, e.color, e.kind]),
    [
      ['load', '#4e79a7', 'fill'],
      ['cast', '#76b7b2', 'fill'],
      ['store', '#f28e2b', 'fill'],
      ['mul', '#59a14f', 'fill'],
      ['stall', '#b9b9b9', 'fill'],
      ['kernel launch', PALETTE.launch, 'band'],
      ['makespan', PALETTE.makespan, 'line']
    ]
  );
  // Both runs: mul first runs at 12,363 in the data-parallel run, still after store.
  assert.deepEqual(
    legendEntries([pipeline, dataParallel], 'op')
      .slice(0, 4)
      .map(e => e.label),
    ['load', 'cast', 'store', 'mul']
  );
});

test('legend by pipe and by tile', () => {
  assert.deepEqual(
    legendEntries([pipeline], 'pipe')
      .filter(e => e.kind === 'fill')
      .map(e => e.label),
    ['MTE2', 'V', 'MTE3', 'stall']
  );
  // Four tiles, first used at 10,900, 12,063, 14,833 and 15,996 cycles.
  assert.deepEqual(
    legendEntries([pipeline], 'tile')
      .slice(0, 4)
      .map(e => [e.label, e.color]),
    [
      ['tile 0', '#4e79a7'],
      ['tile 1', '#f28e2b'],
      ['tile 2', '#59a14f'],
      ['tile 3', '#e15759']
    ]
  );
});

// A run of one lane holding ``slices`` (for the legend tests).
const oneLane = (slices: ReturnType<typeof mk>[]): ReturnType<typeof buildModel> => ({
  ...pipeline,
  stallCount: 0,
  launch: null,
  makespan: null,
  groups: [{ pid: 0, label: 'c', rows: [{ id: 'r', pid: 0, tid: 1, label: 'r', kind: 'span', slices }] }]
});

test('legend: tiles sharing a colour share an entry; more than 12 colours end in "+N more"', () => {
  const many = (names: string[]): ReturnType<typeof buildModel> => oneLane(names.map((n, i) => mk(n, 'AIV0.V', i, i)));
  const tiles = legendEntries([many(Array.from({ length: 25 }, () => 'mul'))], 'tile');
  assert.equal(tiles.length, 10);
  assert.equal(tiles[0].label, 'tile 0, 10, 20');
  assert.equal(tiles[9].label, 'tile 9, 19');
  const ops = legendEntries([many(Array.from({ length: 15 }, (_, i) => `op${i}`))], 'op');
  assert.equal(ops.length, MAX_LEGEND_ENTRIES + 1);
  assert.equal(ops[MAX_LEGEND_ENTRIES].label, '+3 more');
  assert.deepEqual(legendEntries([], 'op'), []);
});

test('legend by tile is in tile order, whatever order the runs started them in (the "both" view)', () => {
  const run = (tiles: number[]): ReturnType<typeof buildModel> => oneLane(tiles.map((t, i) => mk('mul', 'V', t, i)));
  // The data-parallel run starts tiles 0, 4, 5 first; tile 20 shares tile 0's colour and runs before it.
  const labels = legendEntries([run([20, 0, 4, 5, 1]), run([2, 6, 3])], 'tile').map(e => e.label);
  assert.deepEqual(labels, ['tile 0, 20', 'tile 1', 'tile 2', 'tile 3', 'tile 4', 'tile 5', 'tile 6']);
});
