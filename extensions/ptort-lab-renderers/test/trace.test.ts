import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { buildModel, listRuns, packRows, ptortMeta, Row, Slice, traceKnobs } from '../src/logic/trace';
import { fixture, traceBundles } from './helpers';

const bundle = fixture('trace.json');

function rowsOf(m: ReturnType<typeof buildModel>): Row[] {
  return m.groups.flatMap(g => g.rows);
}

test('listRuns puts pipeline first and keeps every run', () => {
  const runs = listRuns(bundle);
  assert.deepEqual(
    runs.map(r => r.label),
    ['pipeline', 'data-parallel']
  );
  assert.ok(runs.every(r => r.trace !== null && r.note === null));
});

test('listRuns: omitted runs get a note, odd input gives no runs, a bare trace is one run', () => {
  const runs = listRuns({ runs: { 'data-parallel': { omitted: '60000 spans; write it with .save_trace(path)' } } });
  assert.equal(runs.length, 1);
  assert.equal(runs[0].trace, null);
  assert.match(runs[0].note as string, /60000 spans/);
  assert.deepEqual(listRuns(null), []);
  assert.deepEqual(listRuns([1, 2]), []);
  assert.deepEqual(listRuns({ runs: [] }), []);
  assert.equal(listRuns({ runs: { x: 5 } })[0].note, 'not a Chrome trace');
  const bare = listRuns(bundle.runs.pipeline);
  assert.equal(bare.length, 1);
  assert.equal(bare[0].label, 'trace');
});

test('pipeline run: cores, lanes in pipe order, exact cycles, channels with depth', () => {
  const m = buildModel(bundle.runs.pipeline);
  assert.equal(m.unit, 'cycles');
  assert.equal(m.clockHz, 1.8e9);
  assert.equal(m.makespan, 20853);
  assert.equal(m.mode, 'pipeline');
  assert.equal(m.start, 0);
  // Channel samples end inside the run (credits after the makespan are shown at it), so the axis ends there too.
  assert.equal(m.end, 20853);
  assert.deepEqual(
    m.groups.map(g => g.label),
    ['core0', 'core1', 'core2']
  );
  assert.deepEqual(
    m.groups[0].rows.map(r => r.label),
    ['AIV0.MTE2', 'AIV0.V', 'AIV0.MTE3', 'loader stalls']
  );
  assert.deepEqual(
    m.groups[0].rows.map(r => r.kind),
    ['span', 'span', 'span', 'stall']
  );
  assert.equal(m.spanCount, 36);
  assert.equal(m.stallCount, 9);
  const first = m.groups[0].rows[0].slices[0];
  assert.equal(first.name, 'load');
  assert.equal(first.start, 10900);
  assert.equal(first.end, 11521);
  assert.equal(first.bytes, 16384);
  assert.equal(first.index, 0);
  assert.equal(first.process, 'loader');
  assert.deepEqual(
    m.counters.map(c => [c.name, c.capacity]),
    [
      ['load_to_compute', 2],
      ['compute_to_store', 2]
    ]
  );
  assert.deepEqual(m.warnings, []);
});

test('data-parallel run: two cores, two vector cores each, no channels', () => {
  const m = buildModel(bundle.runs['data-parallel']);
  assert.deepEqual(
    m.groups.map(g => g.label),
    ['core0', 'core1']
  );
  assert.equal(m.groups[0].rows.length, 7);
  assert.equal(m.counters.length, 0);
  assert.equal(m.makespan, 13757);
});

for (const { name, bundle: b } of traceBundles()) {
  test(`invariants hold for every run of ${name}`, () => {
    for (const run of listRuns(b)) {
      if (!run.trace) {
        continue;
      }
      const m = buildModel(run.trace);
      const events = run.trace.traceEvents ?? [];
      const xs = events.filter(e => e.ph === 'X');
      // Every X event is exactly one slice, with its exact cycles.
      assert.equal(m.spanCount + m.stallCount, xs.length, `${run.label}: slice count`);
      const slices: Slice[] = rowsOf(m).flatMap(r => r.slices);
      assert.equal(slices.length, xs.length);
      const meta = ptortMeta(run.trace);
      assert.ok(meta, `${run.label}: has otherData.ptort`);
      const key = (a: number, c: number): string => `${a}-${c}`;
      const want = xs.map(e => key(e.args!.start_cycles as number, e.args!.end_cycles as number)).sort();
      const got = slices.map(s => key(s.start, s.end)).sort();
      assert.deepEqual(got, want);
      // Rows never overlap and are sorted: the binary searches depend on it.
      for (const r of rowsOf(m)) {
        for (let i = 1; i < r.slices.length; i++) {
          assert.ok(r.slices[i - 1].end <= r.slices[i].start, `${run.label} ${r.label}: overlap at ${i}`);
        }
      }
      // Everything fits in [start, end] and the makespan is the end.
      for (const s of slices) {
        assert.ok(s.start >= m.start && s.end <= m.end);
      }
      assert.equal(
        m.end,
        Math.max(meta!.makespan as number, ...slices.map(s => s.end), ...(meta!.sample_cycles ?? []))
      );
      // Counter points are the C events at their exact cycles, sorted per channel.
      const cs = events.filter(e => e.ph === 'C');
      assert.equal(
        m.counters.reduce((n, c) => n + c.points.length, 0),
        cs.length
      );
      const cycles = [...(meta!.sample_cycles ?? [])].sort((a, b) => a - b);
      const pts = m.counters.flatMap(c => c.points.map(p => p.t)).sort((a, b) => a - b);
      assert.deepEqual(pts, cycles);
      for (const c of m.counters) {
        for (let i = 1; i < c.points.length; i++) {
          assert.ok(c.points[i - 1].t <= c.points[i].t);
        }
        assert.ok(c.capacity === null || c.capacity >= 1);
      }
      assert.deepEqual(m.warnings, []);
    }
  });
}

test('a foreign Chrome trace (no ptort block) is read in microseconds; overlaps get extra rows', () => {
  const m = buildModel({
    traceEvents: [
      { ph: 'M', name: 'thread_name', pid: 1, tid: 7, args: { name: 'worker' } },
      { ph: 'X', name: 'outer', pid: 1, tid: 7, ts: 100, dur: 50 },
      { ph: 'X', name: 'inner', pid: 1, tid: 7, ts: 110, dur: 10 },
      { ph: 'X', name: 'later', pid: 1, tid: 7, ts: 160, dur: 5 },
      { ph: 'C', name: 'queue', pid: 1, tid: 0, ts: 120, args: { a: 1, b: 2 } }
    ]
  });
  assert.equal(m.unit, 'us');
  assert.equal(m.clockHz, null);
  assert.equal(m.start, 100);
  assert.equal(m.end, 165);
  assert.deepEqual(
    m.groups[0].rows.map(r => [r.label, r.slices.map(s => s.name)]),
    [
      ['worker', ['outer', 'later']],
      ['worker #2', ['inner']]
    ]
  );
  assert.deepEqual(
    m.counters.map(c => c.name),
    ['queue.a', 'queue.b']
  );
});

test('buildModel never throws on junk and says why nothing is drawn', () => {
  for (const junk of [null, {}, { traceEvents: 3 }, [null, 1, 'x', { ph: 'X' }]] as any[]) {
    const m = buildModel(junk);
    assert.ok(m.end > m.start);
  }
  assert.deepEqual(buildModel({} as any).warnings, ['no traceEvents in this trace']);
});

test('a sample_cycles list of the wrong length is reported', () => {
  const t = JSON.parse(JSON.stringify(bundle.runs.pipeline));
  t.otherData.ptort.sample_cycles.pop();
  assert.match(buildModel(t).warnings[0], /counter events but/);
});

test('packRows keeps an empty row and never splits non-overlapping slices', () => {
  const mk = (a: number, b: number): Slice => ({
    start: a,
    end: b,
    name: 'x',
    kind: 'span',
    lane: '',
    process: '',
    index: 0,
    taskId: null,
    bytes: null,
    startCycles: a,
    endCycles: b
  });
  const rows = packRows([
    { id: 'a', pid: 0, tid: 1, label: 'a', kind: 'span', slices: [] },
    { id: 'b', pid: 0, tid: 2, label: 'b', kind: 'span', slices: [mk(5, 6), mk(0, 5), mk(6, 9)] }
  ]);
  assert.deepEqual(
    rows.map(r => [r.label, r.slices.map(s => s.start)]),
    [
      ['a', []],
      ['b', [0, 5, 6]]
    ]
  );
});

test("traceKnobs: the bundle's knobs object, or null for odd input", () => {
  assert.deepEqual(traceKnobs(bundle), { cores: 2, depth: 2, tile: [64, 64], tiles: 4 });
  assert.equal(traceKnobs({ runs: {} }), null);
  assert.equal(traceKnobs({ runs: {}, knobs: null }), null);
  assert.equal(traceKnobs({ runs: {}, knobs: [1, 2] }), null);
  assert.equal(traceKnobs({ runs: {}, knobs: 'depth=2' }), null);
  assert.equal(traceKnobs([{ knobs: {} }]), null);
  assert.equal(traceKnobs(null), null);
  assert.equal(traceKnobs(7), null);
  assert.deepEqual(traceKnobs({ knobs: {} }), {});
});

test('the kernel launch: read off the first span when the trace does not record it', () => {
  // Both fixture runs start their first instruction at cycle 10,900 (Machine.launch_overhead_cycles); the
  // pipeline's stall rows start at 0 (a starved process waits through the launch), and do not count.
  assert.deepEqual(buildModel(bundle.runs.pipeline).launch, { start: 0, end: 10900, inferred: true });
  assert.deepEqual(buildModel(bundle.runs['data-parallel']).launch, { start: 0, end: 10900, inferred: true });
});

test('the kernel launch: otherData.ptort.launch_cycles wins; 0 means none; foreign traces have none', () => {
  const t = JSON.parse(JSON.stringify(bundle.runs.pipeline));
  t.otherData.ptort.launch_cycles = 10000;
  assert.deepEqual(buildModel(t).launch, { start: 0, end: 10000, inferred: false });
  t.otherData.ptort.launch_cycles = 0;
  assert.equal(buildModel(t).launch, null);
  t.otherData.ptort.launch_cycles = 'soon';
  assert.deepEqual(buildModel(t).launch, { start: 0, end: 10900, inferred: true });
  const foreign = { traceEvents: [{ ph: 'X', name: 'a', pid: 1, tid: 1, ts: 100, dur: 5 }] };
  assert.equal(buildModel(foreign).launch, null);
  // A ptort trace whose first instruction starts at cycle 0 (a cost model without a launch) has none.
  const early = JSON.parse(JSON.stringify(bundle.runs.pipeline));
  const x = early.traceEvents.find((e: any) => e.ph === 'X' && e.cat === 'span');
  x.args.start_cycles = 0;
  assert.equal(buildModel(early).launch, null);
  assert.equal(buildModel({} as any).launch, null);
});
