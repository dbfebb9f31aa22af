import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { checkCompactRun, modelFromCompact } from '../src/logic/compact';
import { buildModel, TimelineModel } from '../src/logic/trace';
import { compactBundles, fixture } from './helpers';

/** A model without its row ids and tids: the Chrome trace numbers threads, the compact data does not. */
function comparable(m: TimelineModel): unknown {
  return {
    ...m,
    groups: m.groups.map(g => ({
      pid: g.pid,
      label: g.label,
      rows: g.rows.map(r => ({ pid: r.pid, label: r.label, kind: r.kind, slices: r.slices }))
    }))
  };
}

for (const { name, compact, trace } of compactBundles()) {
  test(`modelFromCompact equals buildModel of the same runs (${name})`, () => {
    const labels = Object.keys(trace.runs);
    assert.deepEqual(Object.keys(compact.runs).sort(), [...labels].sort());
    for (const label of labels) {
      const fromCompact = modelFromCompact(compact.runs[label]);
      const fromTrace = buildModel(trace.runs[label]);
      assert.ok(fromTrace.spanCount > 0, `${label}: the trace has spans`);
      assert.deepEqual(comparable(fromCompact), comparable(fromTrace), label);
    }
  });
}

test('the compact fixture sends a column of equal values once, and it expands to every slice', () => {
  const run = fixture('compact.json').runs.pipeline;
  const load = run.rows.find((r: { label: string }) => r.label === 'AIV0.MTE2');
  assert.equal(typeof load.n, 'number');
  assert.equal(run.names[load.n], 'load');
  const model = modelFromCompact(run);
  const row = model.groups.flatMap(g => g.rows).find(r => r.label === 'AIV0.MTE2');
  assert.ok(row && row.slices.length === load.s.length && load.s.length > 1);
  assert.ok(row.slices.every(s => s.name === 'load' && s.process === 'loader'));
});

test('scalar and list columns give the same slices; a missing or odd value gives null or "?"', () => {
  const base = {
    label: 'r',
    clock_hz: 1e9,
    makespan: 30,
    mode: 'pipeline',
    launch_cycles: 0,
    names: ['op', 'proc'],
    groups: [{ pid: 0, label: 'core0' }],
    counters: []
  };
  const lists = { pid: 0, label: 'L', lane: 'L', kind: 'span', s: [0, 10], e: [5, 30], n: [0, 0], p: [1, 1] };
  const scalars = { ...lists, n: 0, p: 1, t: 7, b: null };
  const a = modelFromCompact({ ...base, rows: [lists] });
  const b = modelFromCompact({ ...base, rows: [scalars] });
  const slicesA = a.groups[0].rows[0].slices;
  const slicesB = b.groups[0].rows[0].slices;
  assert.deepEqual(
    slicesA.map(s => [s.start, s.end, s.name, s.process, s.taskId, s.bytes]),
    [
      [0, 5, 'op', 'proc', null, null],
      [10, 30, 'op', 'proc', null, null]
    ]
  );
  assert.deepEqual(
    slicesB.map(s => [s.name, s.process, s.taskId, s.bytes]),
    [
      ['op', 'proc', 7, null],
      ['op', 'proc', 7, null]
    ]
  );
  const odd = modelFromCompact({ ...base, rows: [{ ...lists, n: 9, p: 'x' }] });
  assert.deepEqual(
    odd.groups[0].rows[0].slices.map(s => [s.name, s.process]),
    [
      ['?', ''],
      ['?', '']
    ]
  );
});

test('checkCompactRun names what is wrong', () => {
  assert.throws(() => checkCompactRun(null), /not an object/);
  assert.throws(() => checkCompactRun({ names: [], groups: [], rows: {}, counters: [] }), /rows is not a list/);
  assert.throws(
    () => checkCompactRun({ names: [], groups: [], rows: [{ s: [], e: [] }], counters: [] }),
    /lacks its s\/e\/n columns/
  );
});
