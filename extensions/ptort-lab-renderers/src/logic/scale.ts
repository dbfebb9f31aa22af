/**
 * Zoom and pan maths for a 1-D time axis (the timeline) and a 2-D view box (the diagram). Framework-free.
 *
 * A View is the visible time interval [start, end]; Bounds is the interval one may look at (the whole trace).
 * Every function returns a new, clamped value: the view never leaves the bounds, never gets narrower than
 * `minSpan`, and never wider than the bounds.
 */

export interface View {
  start: number;
  end: number;
}

export function span(v: View): number {
  return v.end - v.start;
}

/** The view moved (not resized) to lie inside `bounds`; a view wider than the bounds becomes the bounds, and
 * one narrower than `minSpan` is widened about its centre. */
export function clampView(v: View, bounds: View, minSpan = 0): View {
  const full = span(bounds);
  let s = span(v);
  if (!(full > 0) || !isFinite(s) || s >= full) {
    return { start: bounds.start, end: bounds.end };
  }
  const minS = Math.min(Math.max(minSpan, 0), full);
  let start = v.start;
  if (s < minS || s <= 0) {
    if (!(minS > 0)) {
      return { start: bounds.start, end: bounds.end };
    }
    start = (v.start + v.end) / 2 - minS / 2;
    s = minS;
  }
  if (!isFinite(start)) {
    start = bounds.start;
  }
  start = Math.min(Math.max(start, bounds.start), bounds.end - s);
  return { start, end: start + s };
}

/**
 * Zoom by `factor` (< 1 zooms in, > 1 zooms out) keeping time `anchor` at the same screen position.
 */
export function zoomAt(v: View, anchor: number, factor: number, bounds: View, minSpan = 0): View {
  if (!(factor > 0) || !isFinite(factor)) {
    return clampView(v, bounds, minSpan);
  }
  const old = span(v);
  const full = span(bounds);
  const target = Math.min(Math.max(old * factor, Math.min(minSpan, full)), full);
  const a = Math.min(Math.max(anchor, v.start), v.end);
  const frac = old > 0 ? (a - v.start) / old : 0.5;
  const start = a - frac * target;
  return clampView({ start, end: start + target }, bounds, minSpan);
}

/** Shift the view by `dt` time units (positive: later), clamped to the bounds. */
export function panBy(v: View, dt: number, bounds: View, minSpan = 0): View {
  return clampView({ start: v.start + dt, end: v.end + dt }, bounds, minSpan);
}

/** Screen x (0..width) of time t. */
export function xOf(t: number, v: View, width: number): number {
  const s = span(v);
  return s > 0 ? ((t - v.start) / s) * width : 0;
}

/** Time at screen x (0..width). */
export function tOf(x: number, v: View, width: number): number {
  return width > 0 ? v.start + (x / width) * span(v) : v.start;
}

/** Time units per screen pixel. */
export function perPixel(v: View, width: number): number {
  return width > 0 ? span(v) / width : 0;
}

/** One zoom step (the + and - buttons and keys): the visible span shrinks to 70% or grows by 1/0.7. */
export const ZOOM_STEP = 0.7;

/** One pan step (the arrow keys), as a fraction of the visible span. */
export const PAN_STEP = 0.15;

/** One zoom step of the diagram's + and - buttons (its view box shrinks to 80% or grows by 1/0.8). */
export const BOX_ZOOM_STEP = 0.8;

/** Pixels per line and per page, for wheel events whose deltaMode is 1 (lines) or 2 (pages). */
const LINE_PX = 16;
const PAGE_PX = 400;

/** The wheel delta in pixels, whatever the event's deltaMode (0 pixels, 1 lines, 2 pages). */
export function wheelPixels(delta: number, deltaMode = 0): number {
  return deltaMode === 1 ? delta * LINE_PX : deltaMode === 2 ? delta * PAGE_PX : delta;
}

/** The parts of a WheelEvent that decide what it does. */
export interface WheelLike {
  deltaX: number;
  deltaY: number;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
}

export type WheelAction = 'zoom' | 'pan' | 'scroll';

/**
 * What a wheel event over a plot does: Ctrl/Cmd + wheel (and a trackpad pinch, which the browser sends as a
 * Ctrl + wheel) zooms; Shift + wheel or a sideways swipe pans; a plain wheel scrolls the page (the notebook), so a
 * plot under the pointer never traps the scroll.
 */
export function wheelAction(e: WheelLike): WheelAction {
  if (e.ctrlKey || e.metaKey) {
    return 'zoom';
  }
  if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
    return 'pan';
  }
  return 'scroll';
}

/** The sideways part of a pan gesture in pixels: deltaX of a swipe, or deltaY of a Shift + wheel. */
export function panPixels(e: WheelLike & { deltaMode: number }): number {
  const d = Math.abs(e.deltaX) >= Math.abs(e.deltaY) ? e.deltaX : e.deltaY;
  return wheelPixels(d, e.deltaMode);
}

/**
 * The zoom factor of one wheel event: exp(delta * k), with line- and page-mode deltas turned into pixels.
 * deltaMode: 0 pixels, 1 lines, 2 pages (the WheelEvent constants).
 */
export function wheelFactor(deltaY: number, deltaMode = 0, k = 0.0015): number {
  const px = wheelPixels(deltaY, deltaMode);
  const clamped = Math.max(-600, Math.min(600, px));
  return Math.exp(clamped * k);
}

/** A "nice" tick step (1, 2 or 5 x 10^k) giving at most `maxTicks` ticks over `range`. */
export function niceStep(range: number, maxTicks: number): number {
  if (!(range > 0) || !(maxTicks >= 1)) {
    return 1;
  }
  const raw = range / maxTicks;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) {
    if (m * p >= raw) {
      return m * p;
    }
  }
  return 10 * p;
}

/** Tick positions inside the view, at least `minPx` pixels apart. */
export function ticks(v: View, width: number, minPx = 80): number[] {
  const maxTicks = Math.max(1, Math.floor(width / minPx));
  const step = niceStep(span(v), maxTicks);
  const first = Math.ceil(v.start / step) * step;
  const out: number[] = [];
  for (let i = 0; ; i++) {
    const t = first + i * step;
    if (t > v.end + step * 1e-9 || i > 1000) {
      break;
    }
    // Snap away floating-point noise (0.30000000000000004 -> 0.3).
    out.push(Number(t.toPrecision(12)));
  }
  return out;
}

// -- 2-D view box (the pipeline diagram) -------------------------------------------------------------------------

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The box showing all of `content` in a viewport of aspect w/h, centred, with a margin fraction. */
export function fitBox(content: Box, viewportW: number, viewportH: number, margin = 0.02): Box {
  const cw = content.w * (1 + 2 * margin);
  const ch = content.h * (1 + 2 * margin);
  const aspect = viewportW > 0 && viewportH > 0 ? viewportW / viewportH : cw / (ch || 1);
  let w = cw;
  let h = ch;
  if (w / (h || 1) < aspect) {
    w = h * aspect;
  } else {
    h = w / aspect;
  }
  return { x: content.x + content.w / 2 - w / 2, y: content.y + content.h / 2 - h / 2, w, h };
}

/**
 * Zoom the view box by `factor` (< 1 zooms in) keeping the content point under (fx, fy) fixed, where fx, fy are
 * fractions (0..1) of the viewport. The box stays between `minScale` and `maxScale` times the fitted box.
 */
export function zoomBox(
  b: Box,
  fx: number,
  fy: number,
  factor: number,
  fitted: Box,
  minScale = 0.05,
  maxScale = 4
): Box {
  if (!(factor > 0) || !isFinite(factor)) {
    return b;
  }
  const scale = Math.min(Math.max((b.w * factor) / fitted.w, minScale), maxScale);
  const w = fitted.w * scale;
  const h = fitted.h * scale;
  const px = b.x + fx * b.w;
  const py = b.y + fy * b.h;
  return { x: px - fx * w, y: py - fy * h, w, h };
}

/** Pan the view box by a screen drag of (dxPx, dyPx) in a viewport of the given size. */
export function panBox(b: Box, dxPx: number, dyPx: number, viewportW: number, viewportH: number): Box {
  const sx = viewportW > 0 ? b.w / viewportW : 0;
  const sy = viewportH > 0 ? b.h / viewportH : 0;
  return { x: b.x - dxPx * sx, y: b.y - dyPx * sy, w: b.w, h: b.h };
}
