/**
 * Compact run data (what the explorer widget receives on every slider move) -> the same TimelineModel that
 * `buildModel` reads from a Chrome trace, so the explorer and the JupyterLab renderer draw with one code path.
 *
 * Framework-free: no DOM, no JupyterLab; unit-tested with node's test runner against `buildModel` of the same run.
 *
 * The payload is column-oriented (ptort_lab/notebook/compact.py writes it): the rows of a run in display order,
 * each with parallel arrays of slice starts and ends (exact cycles), op names (indices into `names`), processes,
 * tile indices, task ids and bytes; the channels as (cycle, occupancy) columns. A number column whose values are all
 * the same is sent as that one value (`Column`). Rows are already named, ordered and split where slices nest, exactly
 * as the exporter's tracks are.
 */

import type { Counter, Group, Json, Launch, Row, Slice, SliceKind, TimelineModel } from './trace';
import { packRows } from './trace';

/** One value per slice, or one value for every slice of the row. */
export type Column = (number | null)[] | number | null;

export interface CompactRow {
  pid: number;
  label: string;
  lane: string;
  kind: SliceKind;
  /** Start and end cycles of each slice. */
  s: number[];
  e: number[];
  /** Name of each slice: an index into the run's `names`. */
  n: Column;
  /** Process of each slice: an index into `names`. */
  p?: Column;
  /** Tile index of each slice, as exported (ints, or tagged tuples/dicts). */
  x?: Json[];
  t?: Column;
  b?: Column;
}

export interface CompactCounter {
  name: string;
  capacity: number | null;
  t: number[];
  v: number[];
}

export interface CompactRun {
  label: string;
  clock_hz: number | null;
  makespan: number;
  mode: string | null;
  launch_cycles: number | null;
  names: string[];
  groups: { pid: number; label: string }[];
  rows: CompactRow[];
  counters: CompactCounter[];
}

function isArray(v: unknown): v is unknown[] {
  return Array.isArray(v);
}

/** Slice `i`'s value of a column (a list, or one value for all); null when absent or not a finite number. */
function numAt(column: Column | undefined, i: number): number | null {
  const v = isArray(column) ? column[i] : column;
  return typeof v === 'number' && isFinite(v) ? v : null;
}

function rowSlices(run: CompactRun, row: CompactRow): Slice[] {
  const names = run.names;
  const out: Slice[] = [];
  const n = Math.min(row.s.length, row.e.length);
  for (let i = 0; i < n; i++) {
    const start = row.s[i];
    const end = Math.max(start, row.e[i]);
    const p = numAt(row.p, i);
    const n = numAt(row.n, i);
    out.push({
      start,
      end,
      name: n !== null ? (names[n] ?? '?') : '?',
      kind: row.kind,
      lane: row.kind === 'stall' ? '' : row.lane,
      process: p !== null ? (names[p] ?? '') : '',
      index: row.x ? row.x[i] : undefined,
      taskId: numAt(row.t, i),
      bytes: numAt(row.b, i),
      startCycles: start,
      endCycles: row.e[i]
    });
  }
  return out;
}

function counterOf(c: CompactCounter): Counter {
  const points = [];
  let max = 0;
  const n = Math.min(c.t.length, c.v.length);
  for (let i = 0; i < n; i++) {
    points.push({ t: c.t[i], v: c.v[i] });
    max = Math.max(max, c.v[i]);
  }
  return { name: c.name, capacity: c.capacity, max, points };
}

/** The launch: declared cycles when the run has them (0 means none), else cycle 0 to the first span. */
function launchOf(launchCycles: number | null, firstSpan: number): Launch | null {
  if (launchCycles !== null) {
    return launchCycles > 0 ? { start: 0, end: launchCycles, inferred: false } : null;
  }
  return isFinite(firstSpan) && firstSpan > 0 ? { start: 0, end: firstSpan, inferred: true } : null;
}

/** Check the shape of a compact run; throws an Error naming the first field that is wrong. */
export function checkCompactRun(run: unknown): CompactRun {
  const r = run as CompactRun;
  if (!r || typeof r !== 'object') {
    throw new Error('compact run: not an object');
  }
  for (const key of ['names', 'groups', 'rows', 'counters'] as const) {
    if (!isArray(r[key])) {
      throw new Error(`compact run: ${key} is not a list`);
    }
  }
  for (const row of r.rows) {
    if (!row || !isArray(row.s) || !isArray(row.e) || !(isArray(row.n) || typeof row.n === 'number')) {
      throw new Error('compact run: a row lacks its s/e/n columns');
    }
  }
  return r;
}

/** A compact run as a TimelineModel (cycles), equal to `buildModel` of the same run's Chrome trace. */
export function modelFromCompact(input: unknown): TimelineModel {
  const run = checkCompactRun(input);
  let spanCount = 0;
  let stallCount = 0;
  let firstSpan = Infinity;
  let minT = Infinity;
  let maxT = -Infinity;
  const byPid = new Map<number, Row[]>();
  for (const cr of run.rows) {
    const slices = rowSlices(run, cr);
    for (const s of slices) {
      minT = Math.min(minT, s.start);
      maxT = Math.max(maxT, s.end);
      if (s.kind === 'stall') {
        stallCount++;
      } else {
        spanCount++;
        firstSpan = Math.min(firstSpan, s.start);
      }
    }
    const row: Row = { id: `${cr.pid}:${cr.label}`, pid: cr.pid, tid: 0, label: cr.label, kind: cr.kind, slices };
    const list = byPid.get(cr.pid) ?? [];
    list.push(row);
    byPid.set(cr.pid, list);
  }
  const groups: Group[] = run.groups
    .filter(g => byPid.has(g.pid))
    .map(g => ({ pid: g.pid, label: g.label, rows: packRows(byPid.get(g.pid) as Row[]) }));
  const counters = run.counters.map(counterOf);
  for (const c of counters) {
    for (const p of c.points) {
      minT = Math.min(minT, p.t);
      maxT = Math.max(maxT, p.t);
    }
  }
  const makespan = typeof run.makespan === 'number' ? run.makespan : null;
  const start = isFinite(minT) ? Math.min(0, minT) : 0;
  const endSeen = Math.max(isFinite(maxT) ? maxT : 0, makespan ?? 0);
  return {
    unit: 'cycles',
    clockHz: typeof run.clock_hz === 'number' ? run.clock_hz : null,
    start,
    end: endSeen > start ? endSeen : start + 1,
    makespan,
    mode: typeof run.mode === 'string' ? run.mode : null,
    launch: launchOf(typeof run.launch_cycles === 'number' ? run.launch_cycles : null, firstSpan),
    groups,
    counters,
    spanCount,
    stallCount,
    warnings: []
  };
}
