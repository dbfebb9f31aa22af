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

export interface TimelineModel {
  unit: TimeUnit;
  /** Cycles per second, when the unit is cycles and the trace says. */
  clockHz: number | null;
  /** Time range covered: [0 or earliest, makespan or latest end]. */
  start: number;
  end: number;
  makespan: number | null;
  mode: string | null;
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

/** Read a Chrome trace (object or bare event array) into a TimelineModel. Never throws on odd input. */
export function buildModel(trace: ChromeTrace | ChromeEvent[]): TimelineModel {
  const warnings: string[] = [];
  const events: ChromeEvent[] = Array.isArray(trace)
    ? trace
    : Array.isArray(trace && trace.traceEvents)
      ? (trace.traceEvents as ChromeEvent[])
      : [];
  if (!Array.isArray(trace) && !(trace && Array.isArray(trace.traceEvents))) {
    warnings.push('no traceEvents in this trace');
  }
  const meta = ptortMeta(trace);
  const clockHz = meta ? num(meta.clock_hz) : null;
  const unit: TimeUnit = meta ? 'cycles' : 'us';
  const cyclesPerUs = clockHz !== null ? clockHz / 1e6 : 1000;

  const processNames = new Map<number, string>();
  const processSort = new Map<number, number>();
  const threadNames = new Map<string, string>();
  const threadSort = new Map<string, number>();
  const rowsByKey = new Map<string, Row>();
  const rowOrder: string[] = [];
  const counters = new Map<string, Counter>();
  const sampleCycles = meta && Array.isArray(meta.sample_cycles) ? meta.sample_cycles : null;
  let counterIndex = 0;
  let spanCount = 0;
  let stallCount = 0;
  let minT = Infinity;
  let maxT = -Infinity;

  const key = (pid: number, tid: number): string => `${pid}:${tid}`;

  for (const ev of events) {
    if (!ev || typeof ev !== 'object') {
      continue;
    }
    const ph = ev.ph;
    const pid = num(ev.pid) ?? 0;
    const tid = num(ev.tid) ?? 0;
    const args = (ev.args && typeof ev.args === 'object' ? ev.args : {}) as { [k: string]: Json };
    if (ph === 'M') {
      if (ev.name === 'process_name') {
        processNames.set(pid, str(args.name, `pid ${pid}`));
      } else if (ev.name === 'process_sort_index') {
        processSort.set(pid, num(args.sort_index) ?? pid);
      } else if (ev.name === 'thread_name') {
        threadNames.set(key(pid, tid), str(args.name, `tid ${tid}`));
      } else if (ev.name === 'thread_sort_index') {
        threadSort.set(key(pid, tid), num(args.sort_index) ?? tid);
      }
    } else if (ph === 'X') {
      const ts = num(ev.ts) ?? 0;
      const dur = Math.max(0, num(ev.dur) ?? 0);
      const sc = num(args.start_cycles);
      const ec = num(args.end_cycles);
      let start: number;
      let end: number;
      if (unit === 'cycles') {
        start = sc ?? Math.round(ts * cyclesPerUs);
        end = ec ?? Math.round((ts + dur) * cyclesPerUs);
      } else {
        start = ts;
        end = ts + dur;
      }
      const kind: SliceKind = ev.cat === 'stall' ? 'stall' : 'span';
      if (kind === 'stall') {
        stallCount++;
      } else {
        spanCount++;
      }
      const k = key(pid, tid);
      let row = rowsByKey.get(k);
      if (!row) {
        row = { id: k, pid, tid, label: '', kind, slices: [] };
        rowsByKey.set(k, row);
        rowOrder.push(k);
      }
      const name = str(ev.name, '?');
      row.slices.push({
        start,
        end: Math.max(start, end),
        name,
        kind,
        lane: str(args.lane, ''),
        process: str(args.process, ''),
        index: args.index,
        taskId: num(args.task_id),
        bytes: num(args.bytes),
        startCycles: sc,
        endCycles: ec
      });
      minT = Math.min(minT, start);
      maxT = Math.max(maxT, end);
    } else if (ph === 'C') {
      const cname = str(ev.name, 'counter');
      const keys = Object.keys(args).filter(a => num(args[a]) !== null);
      let t: number;
      if (unit === 'cycles') {
        const exact = sampleCycles ? num(sampleCycles[counterIndex]) : null;
        t = exact ?? Math.round((num(ev.ts) ?? 0) * cyclesPerUs);
      } else {
        t = num(ev.ts) ?? 0;
      }
      counterIndex++;
      for (const a of keys) {
        const series = a === 'slots' || keys.length === 1 ? cname : `${cname}.${a}`;
        let c = counters.get(series);
        if (!c) {
          c = { name: series, capacity: null, max: 0, points: [] };
          counters.set(series, c);
        }
        const v = num(args[a]) as number;
        c.points.push({ t, v });
        c.max = Math.max(c.max, v);
        minT = Math.min(minT, t);
        maxT = Math.max(maxT, t);
      }
    }
  }
  if (sampleCycles && sampleCycles.length !== counterIndex) {
    warnings.push(
      `trace has ${counterIndex} counter events but ${sampleCycles.length} sample cycles; channel rows may be off`
    );
  }

  // Channel depths from the ptort metadata; counters sorted by time (stable: same-time samples keep file order).
  if (meta && Array.isArray(meta.channels)) {
    for (const pair of meta.channels) {
      if (Array.isArray(pair) && counters.has(String(pair[0]))) {
        (counters.get(String(pair[0])) as Counter).capacity = num(pair[1]);
      }
    }
  }
  for (const c of counters.values()) {
    c.points = c.points
      .map((p, i) => ({ p, i }))
      .sort((a, b) => a.p.t - b.p.t || a.i - b.i)
      .map(x => x.p);
  }
  const counterList = [...counters.values()];
  if (meta && Array.isArray(meta.channels)) {
    const order = new Map(meta.channels.map((p, i) => [String(p[0]), i]));
    counterList.sort((a, b) => (order.get(a.name) ?? 1e9) - (order.get(b.name) ?? 1e9));
  }

  // Rows: name them, order them, group them by pid.
  for (const k of rowOrder) {
    const row = rowsByKey.get(k) as Row;
    row.label = threadNames.get(k) ?? (row.slices[0] && row.slices[0].lane) ?? `tid ${row.tid}`;
    if (!row.label) {
      row.label = `tid ${row.tid}`;
    }
  }
  const pids = [...new Set(rowOrder.map(k => (rowsByKey.get(k) as Row).pid))];
  pids.sort((a, b) => (processSort.get(a) ?? a) - (processSort.get(b) ?? b) || a - b);
  const groups: Group[] = pids.map(pid => {
    const rows = rowOrder
      .map(k => rowsByKey.get(k) as Row)
      .filter(r => r.pid === pid)
      .sort(
        (a, b) =>
          (threadSort.get(a.id) ?? a.tid) - (threadSort.get(b.id) ?? b.tid) || a.tid - b.tid
      );
    return { pid, label: processNames.get(pid) ?? `pid ${pid}`, rows: packRows(rows) };
  });

  const makespan = meta ? num(meta.makespan) : null;
  let start = isFinite(minT) ? Math.min(0, minT) : 0;
  if (unit === 'us' && isFinite(minT)) {
    start = minT; // a foreign trace may start at an arbitrary timestamp
  }
  let end = Math.max(isFinite(maxT) ? maxT : 0, makespan ?? 0);
  if (!(end > start)) {
    end = start + 1;
  }
  return {
    unit,
    clockHz,
    start,
    end,
    makespan,
    mode: meta && typeof meta.mode === 'string' ? meta.mode : null,
    groups,
    counters: counterList,
    spanCount,
    stallCount,
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
