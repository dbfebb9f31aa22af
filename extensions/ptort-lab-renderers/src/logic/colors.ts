/**
 * Slice colours and the timeline's legend. The colours come from palette.json, a checked copy of
 * ptort_lab/viz/palette.json, which the Python (matplotlib) timeline reads too: the same op, pipe or tile has the
 * same colour in both. Framework-free.
 */

import type { Json, Slice, TimelineModel } from './trace';
import { formatIndex } from './format';
import palette from './palette.json';

export interface Palette {
  version: number;
  /** Colours cycled by tile index and hashed into by names not listed below. */
  categorical: string[];
  ops: { [op: string]: string };
  /** By pipe (the part of a lane after its last '.', upper-cased: AIV0.MTE2 -> MTE2). */
  pipes: { [pipe: string]: string };
  stall: string;
  cluster: string;
  launch: string;
  makespan: string;
  channel: string;
  channel_depth: string;
}

export const PALETTE: Palette = palette;

export type ColorBy = 'op' | 'pipe' | 'tile';

/** A stable 32-bit FNV-1a hash of a string (over its UTF-16 code units, i.e. its bytes for ASCII names). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function has(table: { [k: string]: string }, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(table, key);
}

/** The colour of a name: its entry in `table`, else the categorical colour its hash picks. */
export function namedColor(name: string, table: { [k: string]: string }): string {
  return has(table, name) ? table[name] : PALETTE.categorical[hashString(name) % PALETTE.categorical.length];
}

/** The pipe of a lane ("AIV0.MTE2" -> "MTE2"); a stage lane (a process name) stays as it is. */
export function pipeOf(lane: string): string {
  const unit = lane.slice(lane.lastIndexOf('.') + 1).toUpperCase();
  return has(PALETTE.pipes, unit) ? unit : lane;
}

/** The colour of a tile index: integers cycle through the categorical colours, other indices hash into them. */
export function tileColor(index: Json | undefined): string {
  const n = PALETTE.categorical.length;
  if (typeof index === 'number' && Number.isInteger(index)) {
    return PALETTE.categorical[((index % n) + n) % n];
  }
  return PALETTE.categorical[hashString(JSON.stringify(index ?? null)) % n];
}

/** Fill colour of a slice: by op name, by pipe, or by tile; stalls are always grey. */
export function sliceColor(s: Slice, by: ColorBy = 'op'): string {
  if (s.kind === 'stall') {
    return PALETTE.stall;
  }
  if (by === 'tile') {
    return tileColor(s.index);
  }
  if (by === 'pipe') {
    return namedColor(pipeOf(s.lane), PALETTE.pipes);
  }
  return namedColor(s.name, PALETTE.ops);
}

// -- legend -------------------------------------------------------------------------------------------------------

/** How a legend swatch is drawn: a filled box, a dashed line (the makespan), or a pale band (the launch). */
export type SwatchKind = 'fill' | 'line' | 'band';

export interface LegendEntry {
  label: string;
  color: string;
  kind: SwatchKind;
}

/** Legend entries beyond this many are summed up as "+N more" (as in the matplotlib timeline). */
export const MAX_LEGEND_ENTRIES = 12;

/** The key a slice is coloured by, and the label its legend entry shows. */
function colourKey(s: Slice, by: ColorBy): { key: string; label: string } {
  if (by === 'pipe') {
    const pipe = pipeOf(s.lane);
    return { key: pipe, label: pipe };
  }
  if (by === 'tile') {
    const label = formatIndex(s.index);
    return { key: tileColor(s.index), label };
  }
  return { key: s.name, label: s.name };
}

/** Where a tile sorts: its index when a whole number (the usual), else after every numbered tile. */
function tileOrder(index: unknown): number {
  return typeof index === 'number' && isFinite(index) ? index : Infinity;
}

/**
 * Span colour keys with their labels (tiles merged). Ops and pipes come in order of first use (earliest start,
 * then name); tiles by tile index, so that several runs (whose tiles start in different orders) read 0, 1, 2, ...
 */
function spanKeys(models: TimelineModel[], by: ColorBy): { key: string; labels: string[]; color: string }[] {
  const first = new Map<string, { key: string; labels: string[]; color: string; t: number; order: number[] }>();
  for (const m of models) {
    for (const row of m.groups.flatMap(g => g.rows)) {
      for (const s of row.slices) {
        if (s.kind !== 'span') {
          continue;
        }
        const { key, label } = colourKey(s, by);
        let e = first.get(key);
        if (!e) {
          e = { key, labels: [], color: sliceColor(s, by), t: s.start, order: [] };
          first.set(key, e);
        }
        e.t = Math.min(e.t, s.start);
        if (!e.labels.includes(label)) {
          e.labels.push(label);
          e.order.push(tileOrder(s.index));
        }
      }
    }
  }
  const entries = [...first.values()];
  if (by === 'tile') {
    for (const e of entries) {
      // Labels in index order ("tile 0, 10, 20"), whatever order the runs reached them in.
      const sorted = e.labels.map((label, i) => ({ label, n: e.order[i] })).sort((a, b) => a.n - b.n);
      e.labels = sorted.map(x => x.label);
      e.order = sorted.map(x => x.n);
    }
  }
  const byTime = (a: (typeof entries)[0], b: (typeof entries)[0]): number =>
    a.t - b.t || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  return entries.sort(by === 'tile' ? (a, b) => a.order[0] - b.order[0] || byTime(a, b) : byTime);
}

/** "0, 10, 20" for the tiles sharing a colour (at most 3, then "…"). */
function tileLabel(labels: string[]): string {
  const shown = labels.slice(0, 3).join(', ');
  return `tile ${shown}${labels.length > 3 ? ', \u2026' : ''}`;
}

/**
 * The legend of the runs shown: one entry per colour in use (ops, pipes or tiles, in order of first use, at most
 * MAX_LEGEND_ENTRIES then "+N more"), then stalls, the kernel launch and the makespan line when present.
 */
export function legendEntries(models: TimelineModel[], by: ColorBy): LegendEntry[] {
  const keys = spanKeys(models, by);
  const out: LegendEntry[] = keys.slice(0, MAX_LEGEND_ENTRIES).map(k => ({
    label: by === 'tile' ? tileLabel(k.labels) : k.labels[0],
    color: k.color,
    kind: 'fill'
  }));
  if (keys.length > MAX_LEGEND_ENTRIES) {
    out.push({ label: `+${keys.length - MAX_LEGEND_ENTRIES} more`, color: 'transparent', kind: 'fill' });
  }
  if (models.some(m => m.stallCount > 0)) {
    out.push({ label: 'stall', color: PALETTE.stall, kind: 'fill' });
  }
  if (models.some(m => m.launch !== null)) {
    out.push({ label: 'kernel launch', color: PALETTE.launch, kind: 'band' });
  }
  if (models.some(m => m.makespan !== null)) {
    out.push({ label: 'makespan', color: PALETTE.makespan, kind: 'line' });
  }
  return out;
}
