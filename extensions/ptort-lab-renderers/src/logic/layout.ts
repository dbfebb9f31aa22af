/**
 * Timeline geometry: rows -> y positions, slices -> rectangles for the visible time range, hit tests and channel
 * step lines. Framework-free; the widget turns the results into SVG elements.
 *
 * Cost. `visibleRects` finds the first visible slice by binary search and merges runs of slices narrower than a
 * pixel into one cluster, so a frame draws at most a few rectangles per pixel column however long the trace is.
 */

import type { Counter, Group, Row, Slice, TimelineModel } from './trace';
import { View, perPixel, xOf } from './scale';

export const ROW_HEIGHT = 18;
export const STALL_ROW_HEIGHT = 12;
export const GROUP_HEIGHT = 18;
export const COUNTER_HEIGHT = 26;
export const ROW_GAP = 2;

export type RowBoxKind = 'group' | 'lane' | 'stall' | 'counter' | 'section';

export interface RowBox {
  kind: RowBoxKind;
  y: number;
  h: number;
  label: string;
  group?: Group;
  row?: Row;
  counter?: Counter;
}

export interface RowLayout {
  rows: RowBox[];
  height: number;
}

/**
 * Stack the rows of a model: per core a header then its lane rows (stall rows thinner); then a "channels" header
 * and one counter row per channel. Collapsed groups (by pid) show their header only.
 */
export function layoutRows(model: TimelineModel, collapsed: ReadonlySet<number> = new Set(), top = 0): RowLayout {
  const rows: RowBox[] = [];
  let y = top;
  for (const g of model.groups) {
    rows.push({ kind: 'group', y, h: GROUP_HEIGHT, label: g.label, group: g });
    y += GROUP_HEIGHT;
    if (collapsed.has(g.pid)) {
      continue;
    }
    for (const r of g.rows) {
      const h = r.kind === 'stall' ? STALL_ROW_HEIGHT : ROW_HEIGHT;
      rows.push({ kind: r.kind === 'stall' ? 'stall' : 'lane', y, h, label: r.label, group: g, row: r });
      y += h + ROW_GAP;
    }
  }
  if (model.counters.length) {
    rows.push({ kind: 'group', y, h: GROUP_HEIGHT, label: 'channels' });
    y += GROUP_HEIGHT;
    for (const c of model.counters) {
      const label = c.capacity !== null ? `${c.name} (d=${c.capacity})` : c.name;
      rows.push({ kind: 'counter', y, h: COUNTER_HEIGHT, label, counter: c });
      y += COUNTER_HEIGHT + ROW_GAP;
    }
  }
  return { rows, height: y - top };
}

/** The row box at height y, or null. */
export function rowAt(layout: RowLayout, y: number): RowBox | null {
  let lo = 0;
  let hi = layout.rows.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = layout.rows[mid];
    if (y < r.y) {
      hi = mid - 1;
    } else if (y >= r.y + r.h) {
      lo = mid + 1;
    } else {
      return r;
    }
  }
  return null;
}

/** Index of the first slice of a (non-overlapping, sorted) row that ends after t. */
export function firstEndingAfter(slices: readonly Slice[], t: number): number {
  let lo = 0;
  let hi = slices.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (slices[mid].end <= t) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

export interface Rect {
  x: number;
  w: number;
  /** The slice drawn, or null for a cluster of `count` narrow slices. */
  slice: Slice | null;
  count: number;
  start: number;
  end: number;
}

/**
 * Rectangles (screen x and width, in 0..width) of the row's slices visible in `view`. Slices narrower than
 * `minPx` that touch each other (gap < minPx) merge into a cluster; every rectangle is at least `minPx` wide.
 */
export function visibleRects(row: Row, view: View, width: number, minPx = 1): Rect[] {
  const out: Rect[] = [];
  const slices = row.slices;
  let i = firstEndingAfter(slices, view.start);
  const pp = perPixel(view, width);
  let cluster: Rect | null = null;
  const flush = (): void => {
    if (cluster) {
      cluster.w = Math.max(cluster.w, minPx);
      out.push(cluster);
      cluster = null;
    }
  };
  for (; i < slices.length; i++) {
    const s = slices[i];
    if (s.start >= view.end) {
      break;
    }
    const x0 = Math.max(xOf(s.start, view, width), -1);
    const x1 = Math.min(xOf(s.end, view, width), width + 1);
    const w = x1 - x0;
    const narrow = pp > 0 && (s.end - s.start) / pp < minPx;
    if (narrow) {
      const c = cluster as Rect | null;
      if (c && x0 - (c.x + c.w) < minPx) {
        c.w = Math.max(c.w, x1 - c.x);
        c.count++;
        c.end = s.end;
        c.slice = null;
        continue;
      }
      flush();
      cluster = { x: x0, w, slice: s, count: 1, start: s.start, end: s.end };
      continue;
    }
    flush();
    out.push({ x: x0, w: Math.max(w, minPx), slice: s, count: 1, start: s.start, end: s.end });
  }
  flush();
  return out;
}

/**
 * The slice under time t on a row, allowing `tolerance` time units either side (so a 1-pixel slice can be
 * hovered), or null. Prefers the slice that contains t.
 */
export function sliceAt(row: Row, t: number, tolerance = 0): Slice | null {
  const slices = row.slices;
  const i = firstEndingAfter(slices, t - tolerance);
  let best: Slice | null = null;
  let bestDist = Infinity;
  for (let j = Math.max(0, i - 1); j < slices.length && j <= i + 1; j++) {
    const s = slices[j];
    if (s.start <= t && t < s.end) {
      return s;
    }
    const d = t < s.start ? s.start - t : t - s.end;
    if (d <= tolerance && d < bestDist) {
      best = s;
      bestDist = d;
    }
  }
  return best;
}

/** Occupancy of a channel at time t (the last sample at or before t), or null before the first sample. */
export function valueAt(c: Counter, t: number): number | null {
  const pts = c.points;
  let lo = 0;
  let hi = pts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pts[mid].t <= t) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo === 0 ? null : pts[lo - 1].v;
}

/**
 * SVG path data of a channel's occupancy as a filled step area in a box of `width` x `h` (y grows down), scaled
 * to the channel depth (or the largest value). Only the visible part is emitted.
 */
export function counterPath(c: Counter, view: View, width: number, h: number): string {
  const top = Math.max(c.capacity ?? 0, c.max, 1);
  const yOf = (v: number): number => h - (Math.max(0, Math.min(v, top)) / top) * (h - 2);
  const fx = (t: number): number => Math.max(-1, Math.min(width + 1, xOf(t, view, width)));
  const pts = c.points;
  if (!pts.length) {
    return '';
  }
  const v0 = valueAt(c, view.start);
  let d = `M${fx(view.start).toFixed(1)},${h}`;
  let cur = v0 ?? 0;
  d += `V${yOf(cur).toFixed(1)}`;
  for (const p of pts) {
    if (p.t <= view.start) {
      continue;
    }
    if (p.t >= view.end) {
      break;
    }
    if (p.v === cur) {
      continue;
    }
    d += `H${fx(p.t).toFixed(1)}V${yOf(p.v).toFixed(1)}`;
    cur = p.v;
  }
  d += `H${fx(view.end).toFixed(1)}V${h}Z`;
  return d;
}
