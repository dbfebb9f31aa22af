import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { buildModel, Row, Slice } from '../src/logic/trace';
import {
  COUNTER_HEIGHT,
  GROUP_HEIGHT,
  counterPath,
  firstEndingAfter,
  layoutRows,
  rowAt,
  sliceAt,
  valueAt,
  visibleRects
} from '../src/logic/layout';
import { fixture } from './helpers';

const bundle = fixture('trace.json');
const pipeline = buildModel(bundle.runs.pipeline);

function mk(a: number, b: number, name = 'mul', index: any = 0): Slice {
  return {
    start: a,
    end: b,
    name,
    kind: 'span',
    lane: 'V',
    process: 'p',
    index,
    taskId: 1,
    bytes: 8,
    startCycles: a,
    endCycles: b
  };
}

function row(slices: Slice[]): Row {
  return { id: 'r', pid: 0, tid: 1, label: 'r', kind: 'span', slices };
}

test('layoutRows stacks cores, lanes and channels; rowAt finds them', () => {
  const lay = layoutRows(pipeline);
  const kinds = lay.rows.map(r => r.kind);
  assert.equal(kinds.filter(k => k === 'group').length, 4); // 3 cores + channels
  assert.equal(kinds.filter(k => k === 'counter').length, 2);
  assert.equal(kinds.filter(k => k === 'stall').length, 3);
  for (let i = 1; i < lay.rows.length; i++) {
    assert.ok(lay.rows[i].y >= lay.rows[i - 1].y + lay.rows[i - 1].h);
  }
  const last = lay.rows[lay.rows.length - 1];
  assert.equal(last.kind, 'counter');
  assert.equal(last.h, COUNTER_HEIGHT);
  assert.equal(rowAt(lay, last.y + 1), last);
  assert.equal(rowAt(lay, -5), null);
  assert.equal(rowAt(lay, lay.height + 100), null);
  assert.equal(lay.rows[0].label, 'core0');
  assert.match(lay.rows.find(r => r.kind === 'counter')!.label, /^load_to_compute \(d=2\)$/);
});

test('a collapsed core keeps only its header', () => {
  const full = layoutRows(pipeline);
  const folded = layoutRows(pipeline, new Set([0]));
  assert.equal(folded.rows.length, full.rows.length - 4);
  assert.ok(folded.height < full.height);
  assert.equal(folded.rows[0].h, GROUP_HEIGHT);
  assert.equal(folded.rows[1].label, 'core1');
});

test('visibleRects culls to the view and keeps wide slices one by one', () => {
  const r = row([mk(0, 100), mk(100, 200), mk(300, 400), mk(900, 1000)]);
  const rects = visibleRects(r, { start: 150, end: 450 }, 300);
  assert.deepEqual(
    rects.map(x => [x.slice!.start, Math.round(x.x), Math.round(x.w)]),
    [
      [100, -1, 51],
      [300, 150, 100]
    ]
  );
});

test('visibleRects merges runs of sub-pixel slices into clusters', () => {
  const slices: Slice[] = [];
  for (let i = 0; i < 10000; i++) {
    slices.push(mk(i * 10, i * 10 + 5));
  }
  const rects = visibleRects(row(slices), { start: 0, end: 100000 }, 500);
  assert.ok(rects.length <= 500, `${rects.length} rects`);
  assert.equal(
    rects.reduce((n, x) => n + x.count, 0),
    10000
  );
  assert.ok(rects.every(x => x.w >= 1));
  assert.ok(rects.some(x => x.slice === null && x.count > 1));
  // Zoomed in far enough they are drawn one by one again.
  const near = visibleRects(row(slices), { start: 0, end: 1000 }, 500);
  assert.ok(near.every(x => x.slice !== null && x.count === 1));
  assert.equal(near.length, 100);
});

test('firstEndingAfter and sliceAt use the sorted rows', () => {
  const r = row([mk(0, 10), mk(20, 30), mk(30, 35)]);
  assert.equal(firstEndingAfter(r.slices, -1), 0);
  assert.equal(firstEndingAfter(r.slices, 10), 1);
  assert.equal(firstEndingAfter(r.slices, 100), 3);
  assert.equal(sliceAt(r, 5)!.start, 0);
  assert.equal(sliceAt(r, 15), null);
  assert.equal(sliceAt(r, 12, 3)!.start, 0);
  assert.equal(sliceAt(r, 18, 3)!.start, 20);
  assert.equal(sliceAt(r, 30)!.start, 30);
});

test('channel occupancy: valueAt steps, counterPath stays in its box', () => {
  const c = pipeline.counters[0];
  assert.equal(valueAt(c, -1), null);
  assert.equal(valueAt(c, 0), 1); // two samples at cycle 0: the later one wins
  const d = counterPath(c, { start: 0, end: pipeline.end }, 600, 26);
  assert.match(d, /^M[-\d.]+,26V[\d.]+/);
  assert.ok(d.endsWith('Z'));
  for (const m of d.matchAll(/V([-\d.]+)/g)) {
    const y = parseFloat(m[1]);
    assert.ok(y >= 0 && y <= 26);
  }
  assert.equal(counterPath({ name: 'e', capacity: 1, max: 0, points: [] }, { start: 0, end: 1 }, 10, 10), '');
});
