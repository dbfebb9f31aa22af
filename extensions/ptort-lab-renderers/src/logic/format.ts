/**
 * Text for the timeline: numbers, tile indices, tooltips, tick labels and download file names. Framework-free and
 * locale-independent (the same trace gives the same text everywhere). Every string here is shown with
 * textContent, never parsed as HTML.
 */

import type { Counter, Json, Launch, Slice, TimelineModel, TimeUnit } from './trace';
import { valueAt } from './layout';

/** 1234567 -> "1,234,567"; non-integers keep up to `digits` decimals ("1,234.5"). */
export function formatNumber(x: number, digits = 3): string {
  if (!isFinite(x)) {
    return String(x);
  }
  const neg = x < 0;
  let fixed = Math.abs(x).toFixed(digits);
  if (fixed.includes('.')) {
    fixed = fixed.replace(/\.?0+$/, '');
  }
  const [int, frac] = fixed.split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (neg ? '-' : '') + grouped + (frac ? '.' + frac : '');
}

/** 16384 -> "16 KiB", 1536 -> "1.5 KiB", 100 -> "100 B". */
export function formatBytes(n: number): string {
  if (!isFinite(n)) {
    return String(n);
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = i === 0 ? String(v) : formatNumber(v, v >= 100 ? 0 : v >= 10 ? 1 : 2);
  return `${n < 0 ? '-' : ''}${text} ${units[i]}`;
}

/** A tile index as exported by ptort_lab (tagged tuples and dicts decoded): 3, "(0, 1)", "{i: 2}". */
export function formatIndex(index: Json | undefined): string {
  if (index === undefined || index === null) {
    return '-';
  }
  if (Array.isArray(index)) {
    return '[' + index.map(formatIndex).join(', ') + ']';
  }
  if (typeof index === 'object') {
    const keys = Object.keys(index);
    if (keys.length === 1 && keys[0] === 'tuple' && Array.isArray(index.tuple)) {
      const items = index.tuple.map(formatIndex);
      return '(' + items.join(', ') + (items.length === 1 ? ',' : '') + ')';
    }
    if (keys.length === 1 && keys[0] === 'dict' && Array.isArray(index.dict)) {
      return (
        '{' +
        index.dict
          .map(p => (Array.isArray(p) && p.length === 2 ? `${formatIndex(p[0])}: ${formatIndex(p[1])}` : '?'))
          .join(', ') +
        '}'
      );
    }
    return JSON.stringify(index);
  }
  return String(index);
}

/** "1.8 GHz", "900 MHz". */
export function formatHz(hz: number): string {
  if (hz >= 1e9) {
    return `${formatNumber(hz / 1e9, 3)} GHz`;
  }
  if (hz >= 1e6) {
    return `${formatNumber(hz / 1e6, 3)} MHz`;
  }
  return `${formatNumber(hz, 0)} Hz`;
}

/** A duration in µs as "345 ns", "11.585 µs", "2.5 ms". */
export function formatMicros(us: number): string {
  const a = Math.abs(us);
  if (a < 1) {
    return `${formatNumber(us * 1000, 1)} ns`;
  }
  if (a < 1000) {
    return `${formatNumber(us, 3)} µs`;
  }
  return `${formatNumber(us / 1000, 3)} ms`;
}

/** A time value in the model's unit with its unit: "12,063 cycles" or "6.702 µs". */
export function formatTime(t: number, unit: TimeUnit): string {
  return unit === 'cycles' ? `${formatNumber(t, 0)} cycles` : formatMicros(t);
}

/** Width of one character of a tick label (10 px digits), in pixels, for an estimate that errs wide. */
export const TICK_CHAR_PX = 6.5;

/** A compact tick label: 12000 -> "12k", 1500000 -> "1.5M" (cycles, by the tick step); µs, ns or ms. */
export function tickLabel(t: number, unit: TimeUnit, step: number): string {
  if (unit === 'us') {
    if (step < 0.01) {
      return `${formatNumber(t * 1000, 1)} ns`;
    }
    return step < 1000 ? `${formatNumber(t, 3)} µs` : `${formatNumber(t / 1000, 3)} ms`;
  }
  // One format for every tick of an axis, chosen by the step: 0, 5k, 10k ... or 12,500, 13,000 ...
  if (step >= 1e5) {
    return t === 0 ? '0' : `${formatNumber(t / 1e6, 2)}M`;
  }
  if (step >= 1e3) {
    return t === 0 ? '0' : `${formatNumber(t / 1e3, 1)}k`;
  }
  return formatNumber(t, 0);
}

/** Duration in µs of `cycles` at the model's clock, or null. */
export function cyclesToMicros(cycles: number, model: Pick<TimelineModel, 'clockHz'>): number | null {
  return model.clockHz ? (cycles / model.clockHz) * 1e6 : null;
}

/** The tooltip of one slice, one string per line: op, tile, cycles, time, bytes, where it ran. */
export function sliceTooltip(s: Slice, model: Pick<TimelineModel, 'unit' | 'clockHz'>): string[] {
  const lines: string[] = [];
  const dur = s.end - s.start;
  if (s.kind === 'stall') {
    lines.push(`stall: ${s.name}`);
    if (s.process) {
      lines.push(`process ${s.process}`);
    }
  } else {
    lines.push(s.name);
    lines.push(`tile ${formatIndex(s.index)}`);
  }
  if (model.unit === 'cycles') {
    lines.push(`${formatNumber(dur, 0)} cycles (${formatNumber(s.start, 0)} \u2192 ${formatNumber(s.end, 0)})`);
    const us = cyclesToMicros(dur, model);
    if (us !== null && model.clockHz) {
      lines.push(`${formatMicros(us)} at ${formatHz(model.clockHz)}`);
    }
  } else {
    lines.push(`${formatMicros(dur)} (${formatMicros(s.start)} \u2192 ${formatMicros(s.end)})`);
  }
  if (s.kind === 'span') {
    if (s.bytes !== null) {
      lines.push(`${formatBytes(s.bytes)} (${formatNumber(s.bytes, 0)} bytes)`);
    }
    const where = [
      s.lane ? `lane ${s.lane}` : '',
      s.process ? `process ${s.process}` : '',
      s.taskId !== null && s.taskId >= 0 ? `task ${s.taskId}` : ''
    ].filter(Boolean);
    if (where.length) {
      lines.push(where.join(' \u00b7 '));
    }
  }
  return lines;
}

/** The tooltip of a cluster of slices too narrow to draw one by one. */
export function clusterTooltip(count: number, start: number, end: number, unit: TimeUnit): string[] {
  return [
    `${formatNumber(count, 0)} slices`,
    `${formatTime(start, unit)} \u2192 ${formatTime(end, unit)}`,
    'zoom in to see them one by one'
  ];
}

/** The tooltip of a channel row at time t: occupancy out of depth. */
export function counterTooltip(c: Counter, t: number, unit: TimeUnit): string[] {
  const v = valueAt(c, t);
  const cap = c.capacity !== null ? ` / ${formatNumber(c.capacity, 0)}` : '';
  return [
    `channel ${c.name}`,
    v === null ? 'no sample yet' : `${formatNumber(v, 3)}${cap} slots occupied`,
    `at ${formatTime(t, unit)}`
  ];
}

/** The label drawn over the launch period: "kernel launch · 10,900 cycles". */
export function launchLabel(launch: Launch): string {
  return `kernel launch \u00b7 ${formatNumber(launch.end - launch.start, 0)} cycles`;
}

/**
 * The launch label that fits in `px`: whole, else without its number ("kernel launch"), else "launch", else ""
 * (a label cut short would read as another number: "10,9\u2026" for 10,900).
 */
export function launchLabelIn(launch: Launch, px: number, charPx = 6.5): string {
  for (const text of [launchLabel(launch), 'kernel launch', 'launch']) {
    if (fitLabel(text, px, charPx) === text) {
      return text;
    }
  }
  return '';
}

/** The tooltip of the launch period: its cycles, its time at the clock, and why nothing runs in it. */
export function launchTooltip(launch: Launch, model: Pick<TimelineModel, 'clockHz'>): string[] {
  const cycles = launch.end - launch.start;
  const lines = [
    'kernel launch',
    `${formatNumber(cycles, 0)} cycles (${formatNumber(launch.start, 0)} \u2192 ${formatNumber(launch.end, 0)})`
  ];
  const us = cyclesToMicros(cycles, model);
  if (us !== null && model.clockHz) {
    lines.push(`${formatMicros(us)} at ${formatHz(model.clockHz)}`);
  }
  lines.push('no instruction runs before the launch completes');
  if (launch.inferred) {
    lines.push('(from the first instruction: the trace does not record the launch)');
  }
  return lines;
}

/** Short label drawn inside a slice, cut to fit `px` pixels ("" when nothing useful fits). A trailing " (...)" (a
 * channel row's "(d=20)") is kept whole and the name before it cut, or dropped when it does not fit: cut itself, it
 * would read as another value ("c2s (d=2\u2026" for depth 20). */
export function fitLabel(text: string, px: number, charPx = 6.5): string {
  const n = Math.floor((px - 6) / charPx);
  if (n <= 0) {
    return '';
  }
  if (text.length <= n) {
    return text;
  }
  const detail = / \([^()]*\)$/.exec(text);
  if (detail) {
    const name = text.slice(0, detail.index);
    const room = n - detail[0].length; // characters left for the name and its ellipsis
    if (room >= 3) {
      return name.slice(0, room - 1) + '\u2026' + detail[0];
    }
    return fitLabel(name + '\u2026', px, charPx) === name + '\u2026' ? name + '\u2026' : fitLabel(name, px, charPx);
  }
  return n >= 3 ? text.slice(0, n - 1) + '\u2026' : '';
}

/** The label of a span slice: "mul 3" (op and tile). */
export function sliceLabel(s: Slice): string {
  return s.kind === 'stall' ? s.name : s.index === undefined ? s.name : `${s.name} ${formatIndex(s.index)}`;
}

/** One line about a run: "pipeline · 20,853 cycles = 11.585 µs at 1.8 GHz · 36 slices · 9 stalls". */
export function runSummary(label: string, m: TimelineModel): string {
  const parts = [label];
  if (m.unit === 'cycles' && m.makespan !== null) {
    let t = `${formatNumber(m.makespan, 0)} cycles`;
    const us = cyclesToMicros(m.makespan, m);
    if (us !== null && m.clockHz) {
      t += ` = ${formatMicros(us)} at ${formatHz(m.clockHz)}`;
    }
    parts.push(t);
  } else {
    parts.push(`${formatMicros(m.end - m.start)} span`);
  }
  parts.push(`${formatNumber(m.spanCount, 0)} slices`);
  if (m.stallCount) {
    parts.push(`${formatNumber(m.stallCount, 0)} stalls`);
  }
  return parts.join(' \u00b7 ');
}

/** File name for "download Chrome trace": ptort-pipeline-depth2-tile64x64-tiles4-cores2.trace.json. */
export function traceFileName(run: string, knobs?: { [key: string]: Json } | null): string {
  const clean = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '');
  const parts = ['ptort', clean(run) || 'run'];
  if (knobs && typeof knobs === 'object') {
    for (const k of ['depth', 'tile', 'tiles', 'cores']) {
      const v = knobs[k];
      if (v === undefined || v === null) {
        continue;
      }
      const text = Array.isArray(v) ? v.map(x => String(x)).join('x') : String(v);
      const c = clean(`${k}${text}`);
      if (c) {
        parts.push(c);
      }
    }
  }
  return parts.join('-') + '.trace.json';
}
