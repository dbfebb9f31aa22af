/**
 * Chrome Trace Event JSON (as written by ptort_lab.sim.export.to_chrome_json) -> a timeline model.
 *
 * Framework-free: no DOM, no JupyterLab; unit-tested with node's test runner.
 *
 * Time. A ptort trace carries exact cycles (X events: args.start_cycles / args.end_cycles; C events:
 * otherData.ptort.sample_cycles, one per C event in file order), so the model's unit is "cycles" and the clock
 * (otherData.ptort.clock_hz) converts to microseconds for display. Any other Chrome trace is read on a best-effort
 * basis in its own unit, microseconds (ts / dur).
 *
 * Rows. One group per pid (a simulated core; the "channels" pseudo-process carries only counters), ordered by
 * process_sort_index; inside it one row per tid (a pipe such as AIV0.MTE2, a stage, or "<process> stalls"),
 * ordered by thread_sort_index and named by thread_name. Slices on one row never overlap after `packRows`, so a
 * row's slices are sorted by start *and* by end, which the binary searches in layout.ts rely on.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface ChromeEvent {
  ph?: string;
  name?: string;
  cat?: string;
  pid?: number;
  tid?: number;
  ts?: number;
  dur?: number;
  args?: { [key: string]: Json };
}

export interface PtortMeta {
  format?: string;
  version?: number;
  clock_hz?: number;
  makespan?: number;
  mode?: string;
  processes?: string[];
  channels?: [string, number][];
  cores?: [number, string][];
  sample_cycles?: number[];
  /** Cycles of the kernel launch before the first instruction (when the exporter writes it). */
  launch_cycles?: number;
}

export interface ChromeTrace {
  traceEvents?: ChromeEvent[];
  displayTimeUnit?: string;
  otherData?: { ptort?: PtortMeta; [key: string]: Json | PtortMeta | undefined };
}

export type SliceKind = 'span' | 'stall';

export interface Slice {
  start: number;
  end: number;
  /** The op (load, mul, ...) or, for a stall, its reason. */
  name: string;
  kind: SliceKind;
  lane: string;
  process: string;
  /** The tile index as exported (ints, strings, or tagged {"tuple": [...]} / {"dict": [[k, v], ...]}). */
  index: Json | undefined;
  taskId: number | null;
  bytes: number | null;
  /** Exact cycles when the trace has them, else null. */
  startCycles: number | null;
  endCycles: number | null;
}

export interface Row {
  id: string;
  pid: number;
  tid: number;
  label: string;
  kind: SliceKind;
  slices: Slice[];
}

export interface Group {
  pid: number;
  label: string;
  rows: Row[];
}

export interface CounterPoint {
  t: number;
  v: number;
}

export interface Counter {
  name: string;
  /** Channel depth (slots) when known. */
  capacity: number | null;
  max: number;
  points: CounterPoint[];
}

export type TimeUnit = 'cycles' | 'us';

/** The launch period [start, end) in cycles; `inferred` when read off the first span, not from the metadata. */
export interface Launch {
  start: number;
  end: number;
  inferred: boolean;
}

export interface TimelineModel {
  unit: TimeUnit;
  /** Cycles per second, when the unit is cycles and the trace says. */
  clockHz: number | null;
  /** Time range covered: [0 or earliest, makespan or latest end]. */
  start: number;
  end: number;
  makespan: number | null;
  mode: string | null;
  /** The kernel launch before the first instruction (a ptort trace only), or null. */
  launch: Launch | null;
  groups: Group[];
  counters: Counter[];
  spanCount: number;
  stallCount: number;
  /** Problems found while reading (unknown events, missing sample cycles...), shown as notes. */
  warnings: string[];
}

function num(v: unknown): number | null {
  return typeof v === 'number' && isFinite(v) ? v : null;
}

function str(v: unknown, fallback = ''): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? fallback : String(v);
}

/** The ptort metadata block of a trace, if it is one ptort_lab wrote. */
export function ptortMeta(trace: ChromeTrace | ChromeEvent[]): PtortMeta | null {
  if (Array.isArray(trace) || !trace || typeof trace !== 'object') {
    return null;
  }
  const meta = trace.otherData && trace.otherData.ptort;
  return meta && typeof meta === 'object' && meta.format === 'ptort-chrome-trace' ? meta : null;
}

/**
 * Split each row's slices into as few non-overlapping rows as possible (greedy, by start): a row that had
 * overlapping (e.g. nested) slices becomes "label", "label #2", ... . Input rows keep their order.
 */
export function packRows(rows: Row[]): Row[] {
  const out: Row[] = [];
  for (const row of rows) {
    const sorted = row.slices
      .map((s, i) => ({ s, i }))
      .sort((a, b) => a.s.start - b.s.start || b.s.end - a.s.end || a.i - b.i)
      .map(x => x.s);
    const levels: Slice[][] = [];
    const ends: number[] = [];
    for (const s of sorted) {
      let k = 0;
      while (k < levels.length && ends[k] > s.start) {
        k++;
      }
      if (k === levels.length) {
        levels.push([]);
        ends.push(-Infinity);
      }
      levels[k].push(s);
      ends[k] = Math.max(ends[k], s.end);
    }
    if (levels.length === 0) {
      levels.push([]);
    }
    levels.forEach((slices, k) => {
      out.push({
        ...row,
        id: k === 0 ? row.id : `${row.id}#${k + 1}`,
        label: k === 0 ? row.label : `${row.label} #${k + 1}`,
        slices
      });
    });
  }
  return out;
}

/** Everything gathered while reading the events of one trace, before rows and counters are put in order. */
interface Reader {
  unit: TimeUnit;
  cyclesPerUs: number;
  sampleCycles: number[] | null;
  processNames: Map<number, string>;
  processSort: Map<number, number>;
  threadNames: Map<string, string>;
  threadSort: Map<string, number>;
  rowsByKey: Map<string, Row>;
  /** Row keys in order of first appearance. */
  rowOrder: string[];
  counters: Map<string, Counter>;
  /** How many C events were read (the index into sampleCycles). */
  counterIndex: number;
  spanCount: number;
  stallCount: number;
  minT: number;
  maxT: number;
  /** Start of the earliest span (not stall): the first instruction. */
  firstSpan: number;
}

/** Microseconds per cycle assumed for a ptort trace that does not say its clock (1 GHz). */
const DEFAULT_CYCLES_PER_US = 1000;

function rowKey(pid: number, tid: number): string {
  return `${pid}:${tid}`;
}

function eventsOf(trace: ChromeTrace | ChromeEvent[], warnings: string[]): ChromeEvent[] {
  if (Array.isArray(trace)) {
    return trace;
  }
  if (trace && Array.isArray(trace.traceEvents)) {
    return trace.traceEvents;
  }
  warnings.push('no traceEvents in this trace');
  return [];
}

function newReader(meta: PtortMeta | null): Reader {
  const clockHz = meta ? num(meta.clock_hz) : null;
  return {
    unit: meta ? 'cycles' : 'us',
    cyclesPerUs: clockHz !== null ? clockHz / 1e6 : DEFAULT_CYCLES_PER_US,
    sampleCycles: meta && Array.isArray(meta.sample_cycles) ? meta.sample_cycles : null,
    processNames: new Map(),
    processSort: new Map(),
    threadNames: new Map(),
    threadSort: new Map(),
    rowsByKey: new Map(),
    rowOrder: [],
    counters: new Map(),
    counterIndex: 0,
    spanCount: 0,
    stallCount: 0,
    minT: Infinity,
    maxT: -Infinity,
    firstSpan: Infinity
  };
}

/** M events: process and thread names and sort keys. */
function readMetadata(r: Reader, ev: ChromeEvent, pid: number, tid: number, args: { [k: string]: Json }): void {
  if (ev.name === 'process_name') {
    r.processNames.set(pid, str(args.name, `pid ${pid}`));
  } else if (ev.name === 'process_sort_index') {
    r.processSort.set(pid, num(args.sort_index) ?? pid);
  } else if (ev.name === 'thread_name') {
    r.threadNames.set(rowKey(pid, tid), str(args.name, `tid ${tid}`));
  } else if (ev.name === 'thread_sort_index') {
    r.threadSort.set(rowKey(pid, tid), num(args.sort_index) ?? tid);
  }
}

/** An X event's [start, end]: exact cycles from args when the trace has them, else from ts/dur. */
function sliceTimes(r: Reader, ev: ChromeEvent, sc: number | null, ec: number | null): [number, number] {
  const ts = num(ev.ts) ?? 0;
  const dur = Math.max(0, num(ev.dur) ?? 0);
  if (r.unit !== 'cycles') {
    return [ts, ts + dur];
  }
  return [sc ?? Math.round(ts * r.cyclesPerUs), ec ?? Math.round((ts + dur) * r.cyclesPerUs)];
}

/** X events: one slice each, on the row of its (pid, tid). */
function readSlice(r: Reader, ev: ChromeEvent, pid: number, tid: number, args: { [k: string]: Json }): void {
  const sc = num(args.start_cycles);
  const ec = num(args.end_cycles);
  const [start, end] = sliceTimes(r, ev, sc, ec);
  const kind: SliceKind = ev.cat === 'stall' ? 'stall' : 'span';
  if (kind === 'stall') {
    r.stallCount++;
  } else {
    r.spanCount++;
    r.firstSpan = Math.min(r.firstSpan, start);
  }
  const k = rowKey(pid, tid);
  let row = r.rowsByKey.get(k);
  if (!row) {
    row = { id: k, pid, tid, label: '', kind, slices: [] };
    r.rowsByKey.set(k, row);
    r.rowOrder.push(k);
  }
  row.slices.push({
    start,
    end: Math.max(start, end),
    name: str(ev.name, '?'),
    kind,
    lane: str(args.lane, ''),
    process: str(args.process, ''),
    index: args.index,
    taskId: num(args.task_id),
    bytes: num(args.bytes),
    startCycles: sc,
    endCycles: ec
  });
  r.minT = Math.min(r.minT, start);
  r.maxT = Math.max(r.maxT, end);
}

/** C events: one point per numeric arg; "slots" (or a lone arg) is the channel itself, others "name.arg". */
function readCounter(r: Reader, ev: ChromeEvent, args: { [k: string]: Json }): void {
  const cname = str(ev.name, 'counter');
  const keys = Object.keys(args).filter(a => num(args[a]) !== null);
  let t: number;
  if (r.unit === 'cycles') {
    const exact = r.sampleCycles ? num(r.sampleCycles[r.counterIndex]) : null;
    t = exact ?? Math.round((num(ev.ts) ?? 0) * r.cyclesPerUs);
  } else {
    t = num(ev.ts) ?? 0;
  }
  r.counterIndex++;
  for (const a of keys) {
    const series = a === 'slots' || keys.length === 1 ? cname : `${cname}.${a}`;
    let c = r.counters.get(series);
    if (!c) {
      c = { name: series, capacity: null, max: 0, points: [] };
      r.counters.set(series, c);
    }
    const v = num(args[a]) as number;
    c.points.push({ t, v });
    c.max = Math.max(c.max, v);
    r.minT = Math.min(r.minT, t);
    r.maxT = Math.max(r.maxT, t);
  }
}

function readEvent(r: Reader, ev: ChromeEvent): void {
  if (!ev || typeof ev !== 'object') {
    return;
  }
  const pid = num(ev.pid) ?? 0;
  const tid = num(ev.tid) ?? 0;
  const args = (ev.args && typeof ev.args === 'object' ? ev.args : {}) as { [k: string]: Json };
  if (ev.ph === 'M') {
    readMetadata(r, ev, pid, tid, args);
  } else if (ev.ph === 'X') {
    readSlice(r, ev, pid, tid, args);
  } else if (ev.ph === 'C') {
    readCounter(r, ev, args);
  }
}

/** The channels: depths from the ptort metadata, points sorted by time (stably), in the metadata's order. */
function finishCounters(r: Reader, meta: PtortMeta | null, warnings: string[]): Counter[] {
  if (r.sampleCycles && r.sampleCycles.length !== r.counterIndex) {
    warnings.push(
      `trace has ${r.counterIndex} counter events but ${r.sampleCycles.length} sample cycles; channel rows may be off`
    );
  }
  const channels = meta && Array.isArray(meta.channels) ? meta.channels : null;
  for (const pair of channels ?? []) {
    const c = Array.isArray(pair) ? r.counters.get(String(pair[0])) : undefined;
    if (c) {
      c.capacity = num(pair[1]);
    }
  }
  for (const c of r.counters.values()) {
    c.points = c.points
      .map((p, i) => ({ p, i }))
      .sort((a, b) => a.p.t - b.p.t || a.i - b.i)
      .map(x => x.p);
  }
  const list = [...r.counters.values()];
  if (channels) {
    const order = new Map(channels.map((p, i) => [String(p[0]), i]));
    list.sort((a, b) => (order.get(a.name) ?? 1e9) - (order.get(b.name) ?? 1e9));
  }
  return list;
}

/** Rows named (thread name, else lane, else tid), grouped by pid, in sort-index order, overlaps packed. */
function buildGroups(r: Reader): Group[] {
  const rows = r.rowOrder.map(k => r.rowsByKey.get(k) as Row);
  for (const row of rows) {
    row.label = (r.threadNames.get(row.id) ?? row.slices[0]?.lane ?? '') || `tid ${row.tid}`;
  }
  const pids = [...new Set(rows.map(row => row.pid))];
  pids.sort((a, b) => (r.processSort.get(a) ?? a) - (r.processSort.get(b) ?? b) || a - b);
  const threadOrder = (row: Row): number => r.threadSort.get(row.id) ?? row.tid;
  return pids.map(pid => ({
    pid,
    label: r.processNames.get(pid) ?? `pid ${pid}`,
    rows: packRows(rows.filter(row => row.pid === pid).sort((a, b) => threadOrder(a) - threadOrder(b) || a.tid - b.tid))
  }));
}

/** [start, end] of the axis: from 0 (or a foreign trace's first event) to the makespan or the last event. */
function timeRange(r: Reader, makespan: number | null): [number, number] {
  const seen = isFinite(r.minT);
  // A foreign trace may start at an arbitrary timestamp; a ptort trace starts at cycle 0.
  const start = !seen ? 0 : r.unit === 'us' ? r.minT : Math.min(0, r.minT);
  const end = Math.max(isFinite(r.maxT) ? r.maxT : 0, makespan ?? 0);
  return [start, end > start ? end : start + 1];
}

/**
 * The kernel launch before the first instruction (cycles): `otherData.ptort.launch_cycles` when the trace has it,
 * else, in a ptort trace, cycle 0 to the first span (no instruction starts before the launch completes).
 */
function launchOf(r: Reader, meta: PtortMeta | null): Launch | null {
  if (!meta) {
    return null;
  }
  const declared = num(meta.launch_cycles);
  if (declared !== null) {
    return declared > 0 ? { start: 0, end: declared, inferred: false } : null;
  }
  return isFinite(r.firstSpan) && r.firstSpan > 0 ? { start: 0, end: r.firstSpan, inferred: true } : null;
}

/** Read a Chrome trace (object or bare event array) into a TimelineModel. Never throws on odd input. */
export function buildModel(trace: ChromeTrace | ChromeEvent[]): TimelineModel {
  const warnings: string[] = [];
  const events = eventsOf(trace, warnings);
  const meta = ptortMeta(trace);
  const r = newReader(meta);
  for (const ev of events) {
    readEvent(r, ev);
  }
  const counters = finishCounters(r, meta, warnings);
  const makespan = meta ? num(meta.makespan) : null;
  const [start, end] = timeRange(r, makespan);
  return {
    unit: r.unit,
    clockHz: meta ? num(meta.clock_hz) : null,
    start,
    end,
    makespan,
    mode: meta && typeof meta.mode === 'string' ? meta.mode : null,
    launch: launchOf(r, meta),
    groups: buildGroups(r),
    counters,
    spanCount: r.spanCount,
    stallCount: r.stallCount,
    warnings
  };
}

/** The payload of application/vnd.ptort.trace+json: runs by label (pipeline, data-parallel) and the knobs. */
export interface TraceBundle {
  runs: { [label: string]: ChromeTrace | { omitted: string } };
  knobs?: { [key: string]: Json };
}

export interface RunEntry {
  label: string;
  trace: ChromeTrace | null;
  /** Why the run is not drawable (omitted from the notebook, or not a trace), else null. */
  note: string | null;
}

const RUN_ORDER = ['pipeline', 'data-parallel'];

/** The runs of a bundle in display order (pipeline first), with a note for omitted or malformed ones. */
export function listRuns(bundle: unknown): RunEntry[] {
  if (!bundle || typeof bundle !== 'object' || Array.isArray(bundle)) {
    return [];
  }
  const b = bundle as { runs?: unknown; traceEvents?: unknown };
  if (Array.isArray(b.traceEvents)) {
    // A bare Chrome trace was given instead of a bundle: show it as one run.
    return [{ label: 'trace', trace: bundle as ChromeTrace, note: null }];
  }
  const runs = b.runs && typeof b.runs === 'object' && !Array.isArray(b.runs) ? (b.runs as object) : {};
  const labels = Object.keys(runs).sort((x, y) => {
    const ix = RUN_ORDER.indexOf(x);
    const iy = RUN_ORDER.indexOf(y);
    return (ix < 0 ? 99 : ix) - (iy < 0 ? 99 : iy) || (x < y ? -1 : x > y ? 1 : 0);
  });
  return labels.map(label => {
    const run = (runs as { [k: string]: unknown })[label];
    if (run && typeof run === 'object' && 'omitted' in (run as object)) {
      return { label, trace: null, note: `not in the notebook: ${str((run as { omitted: unknown }).omitted)}` };
    }
    if (!run || typeof run !== 'object' || !Array.isArray((run as ChromeTrace).traceEvents)) {
      return { label, trace: null, note: 'not a Chrome trace' };
    }
    return { label, trace: run as ChromeTrace, note: null };
  });
}

/** The knobs of a trace bundle ({depth, tile, tiles, cores, ...}), or null when it has none (or odd ones). */
export function traceKnobs(bundle: unknown): { [key: string]: Json } | null {
  if (!bundle || typeof bundle !== 'object' || Array.isArray(bundle)) {
    return null;
  }
  const knobs = (bundle as { knobs?: unknown }).knobs;
  return knobs && typeof knobs === 'object' && !Array.isArray(knobs) ? (knobs as { [key: string]: Json }) : null;
}
