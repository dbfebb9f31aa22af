import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { buildModel } from '../src/logic/trace';
import {
  counterTooltip,
  fitLabel,
  formatBytes,
  formatHz,
  formatIndex,
  formatMicros,
  formatNumber,
  launchLabel,
  launchLabelIn,
  launchTooltip,
  runSummary,
  sliceLabel,
  sliceTooltip,
  tickLabel,
  traceFileName
} from '../src/logic/format';
import { fixture } from './helpers';

const bundle = fixture('trace.json');
const pipeline = buildModel(bundle.runs.pipeline);

test('numbers, bytes, frequencies and durations', () => {
  assert.equal(formatNumber(1234567), '1,234,567');
  assert.equal(formatNumber(-1234.5), '-1,234.5');
  assert.equal(formatNumber(0.1 + 0.2), '0.3');
  assert.equal(formatNumber(999, 0), '999');
  assert.equal(formatBytes(16384), '16 KiB');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(100), '100 B');
  assert.equal(formatBytes(3 * 1024 * 1024), '3 MiB');
  assert.equal(formatHz(1.8e9), '1.8 GHz');
  assert.equal(formatHz(9e8), '900 MHz');
  assert.equal(formatMicros(0.345), '345 ns');
  assert.equal(formatMicros(11.585), '11.585 µs');
  assert.equal(formatMicros(2500), '2.5 ms');
});

test('tile indices: ints, strings, tagged tuples and dicts', () => {
  assert.equal(formatIndex(3), '3');
  assert.equal(formatIndex('a'), 'a');
  assert.equal(formatIndex(undefined), '-');
  assert.equal(formatIndex({ tuple: [0, 1] }), '(0, 1)');
  assert.equal(formatIndex({ tuple: [7] }), '(7,)');
  assert.equal(
    formatIndex({
      dict: [
        ['i', 2],
        ['j', { tuple: [1, 2] }]
      ]
    }),
    '{i: 2, j: (1, 2)}'
  );
  assert.equal(formatIndex([1, [2]]), '[1, [2]]');
});

test('the tooltip of a real span names op, tile, cycles, time, bytes and where it ran', () => {
  const s = pipeline.groups[0].rows[0].slices[0];
  assert.deepEqual(sliceTooltip(s, pipeline), [
    'load',
    'tile 0',
    '621 cycles (10,900 \u2192 11,521)',
    '345 ns at 1.8 GHz',
    '16 KiB (16,384 bytes)',
    'lane AIV0.MTE2 \u00b7 process loader \u00b7 task 0'
  ]);
  assert.equal(sliceLabel(s), 'load 0');
});

test('the tooltip of a stall gives its reason and process', () => {
  const stall = pipeline.groups[2].rows[3].slices[0];
  const lines = sliceTooltip(stall, pipeline);
  assert.match(lines[0], /^stall: /);
  assert.equal(lines[1], 'process storer');
  assert.match(lines[2], / cycles \(/);
});

test('foreign traces get microsecond tooltips', () => {
  const m = buildModel({ traceEvents: [{ ph: 'X', name: 'k', ts: 1, dur: 2.5, args: {} }] });
  const lines = sliceTooltip(m.groups[0].rows[0].slices[0], m);
  assert.equal(lines[2], '2.5 µs (1 µs \u2192 3.5 µs)');
});

test('channel tooltip: occupancy out of depth at a time', () => {
  const c = pipeline.counters[0];
  assert.deepEqual(counterTooltip(c, 12063, 'cycles'), [
    'channel load_to_compute',
    '2 / 2 slots occupied',
    'at 12,063 cycles'
  ]);
  assert.equal(counterTooltip(c, -1, 'cycles')[1], 'no sample yet');
});

test('tick labels are compact', () => {
  assert.equal(tickLabel(12000, 'cycles', 2000), '12k');
  assert.equal(tickLabel(5000, 'cycles', 5000), '5k');
  assert.equal(tickLabel(0, 'cycles', 5000), '0');
  assert.equal(tickLabel(200000, 'cycles', 200000), '0.2M');
  assert.equal(tickLabel(12500, 'cycles', 500), '12,500');
  assert.equal(tickLabel(1500000, 'cycles', 500000), '1.5M');
  assert.equal(tickLabel(0.25, 'us', 0.05), '0.25 µs');
  assert.equal(tickLabel(0.005, 'us', 0.005), '5 ns');
  assert.equal(tickLabel(3000, 'us', 1000), '3 ms');
  assert.equal(tickLabel(6.5, 'us', 0.5), '6.5 µs');
});

test('fitLabel cuts to the room available', () => {
  assert.equal(fitLabel('compute_kernel', 200), 'compute_kernel');
  assert.equal(fitLabel('compute_kernel', 50), 'compu\u2026');
  assert.equal(fitLabel('x', 5), '');
});

test('fitLabel keeps a trailing "(d=...)" whole: a cut depth would read as another one', () => {
  // 20 characters fit in 136 px at 6.5 px each (as a channel row's label pane)
  assert.equal(fitLabel('compute_to_store (d=20)', 136), 'compute_to_s\u2026 (d=20)');
  assert.equal(fitLabel('compute_to_store (d=2)', 136), 'compute_to_st\u2026 (d=2)');
  assert.equal(fitLabel('c2s (d=20)', 136), 'c2s (d=20)');
  // too narrow for the detail: the name alone, never "(d=2\u2026"
  assert.equal(fitLabel('compute_to_store (d=20)', 60), 'compute\u2026');
  assert.equal(fitLabel('ab (d=20)', 40), 'ab\u2026');
  // no detail: cut at the end, as before
  assert.equal(fitLabel('compute_to_store d=20', 136), 'compute_to_store d=\u2026');
});

test('run summary line', () => {
  assert.equal(
    runSummary('pipeline', pipeline),
    'pipeline \u00b7 20,853 cycles = 11.585 µs at 1.8 GHz \u00b7 36 slices \u00b7 9 stalls'
  );
});

test('download file names are descriptive and safe', () => {
  assert.equal(traceFileName('pipeline', bundle.knobs), 'ptort-pipeline-depth2-tile64x64-tiles4-cores2.trace.json');
  assert.equal(traceFileName('data-parallel'), 'ptort-data-parallel.trace.json');
  const evil = traceFileName('../../etc/passwd', { depth: '<script>' as any });
  assert.ok(!/[/<>]/.test(evil), evil);
  assert.ok(evil.endsWith('.trace.json'));
});

test('the launch period: its label and tooltip (10,900 cycles = 6.056 us at 1.8 GHz)', () => {
  const launch = pipeline.launch!;
  assert.equal(launchLabel(launch), 'kernel launch \u00b7 10,900 cycles');
  assert.deepEqual(launchTooltip(launch, pipeline), [
    'kernel launch',
    '10,900 cycles (0 \u2192 10,900)',
    '6.056 \u00b5s at 1.8 GHz',
    'no instruction runs before the launch completes',
    '(from the first instruction: the trace does not record the launch)'
  ]);
  assert.deepEqual(launchTooltip({ start: 0, end: 1800, inferred: false }, { clockHz: null }), [
    'kernel launch',
    '1,800 cycles (0 \u2192 1,800)',
    'no instruction runs before the launch completes'
  ]);
});

test('the launch label is whole or drops its number, never cut mid-number ("10,9\u2026")', () => {
  const launch = pipeline.launch!;
  assert.equal(launchLabelIn(launch, 400), 'kernel launch \u00b7 10,900 cycles');
  assert.equal(launchLabelIn(launch, 150), 'kernel launch');
  assert.equal(launchLabelIn(launch, 60), 'launch');
  assert.equal(launchLabelIn(launch, 30), '');
});
