/**
 * The interactive timeline: one row per pipe or stage grouped per core, channel fill rows, the kernel launch
 * labelled, a time axis with Ctrl/Cmd + wheel zoom (around the pointer), Shift + wheel and drag pan, double-click
 * reset, keyboard (+ - 0 arrows), hover tooltips and a colour legend. A plain wheel scrolls the notebook.
 * This class keeps the state and handles events; timelineDraw.ts draws the SVG from logic/layout.ts,
 * logic/scale.ts and logic/colors.ts.
 */

import { Launch, TimelineModel } from './logic/trace';
import { RowBox, RowLayout, rowAt, sliceAt } from './logic/layout';
import { ColorBy, legendEntries } from './logic/colors';
import {
  PAN_STEP,
  View,
  ZOOM_STEP,
  panBy,
  panPixels,
  perPixel,
  span,
  tOf,
  wheelAction,
  wheelFactor,
  xOf,
  zoomAt
} from './logic/scale';
import { counterTooltip, launchTooltip, sliceTooltip } from './logic/format';
import { AXIS_H, LABEL_W, PlacedRow, Placement, drawFrame, placeRuns } from './timelineDraw';
import { el, setLegend, setLines, svgEl } from './dom';

export { LABEL_W };

export interface RunView {
  label: string;
  model: TimelineModel;
}

const DEFAULT_W = 900;
const MIN_PLOT_W = 200;
/** Hover finds a slice this many pixels either side of the pointer (so 1-pixel slices can be hovered). */
const HOVER_SLOP_PX = 3;
/** Narrowest visible span: a millionth of the trace, and at least 10 cycles (or 1 ns). */
const MIN_SPAN_FRACTION = 1e-6;
const MIN_SPAN_CYCLES = 10;
const MIN_SPAN_US = 0.001;
/** A drag shorter than this many pixels is a click, not a pan. */
const DRAG_SLOP_PX = 3;

/** Keyboard commands of a focused timeline. */
const KEYS: { [key: string]: (v: TimelineView) => void } = {
  '+': v => v.zoom(ZOOM_STEP),
  '=': v => v.zoom(ZOOM_STEP),
  '-': v => v.zoom(1 / ZOOM_STEP),
  _: v => v.zoom(1 / ZOOM_STEP),
  '0': v => v.reset(),
  ArrowLeft: v => v.pan(-PAN_STEP),
  ArrowRight: v => v.pan(PAN_STEP)
};

export class TimelineView {
  readonly node: HTMLDivElement;
  /** The colour legend of the runs shown (the renderer places it next to the timeline). */
  readonly legend: HTMLDivElement;

  constructor() {
    this.node = el('div', 'ptort-timeline');
    this.node.tabIndex = 0;
    this.node.setAttribute('role', 'figure');
    this.node.setAttribute(
      'aria-label',
      'Timeline. Ctrl or Cmd + wheel to zoom, drag or Shift + wheel to pan, double-click or 0 to reset, ' +
        '+ and - to zoom, arrows to pan.'
    );
    this._svg = svgEl('svg', { class: 'ptort-timeline-svg' });
    this.node.appendChild(this._svg);
    this._tip = el('div', 'ptort-tooltip');
    this._tip.hidden = true;
    this.node.appendChild(this._tip);
    this.legend = el('div', 'ptort-legend');
    this.legend.setAttribute('aria-label', 'Colour legend');
    this._wire();
  }

  /** Show these runs stacked on one shared time axis; the view resets to the whole trace. */
  setRuns(runs: RunView[]): void {
    this._runs = runs;
    const starts = runs.map(r => r.model.start);
    const ends = runs.map(r => r.model.end);
    this._bounds = runs.length ? { start: Math.min(...starts), end: Math.max(...ends) } : { start: 0, end: 1 };
    const cycles = runs.every(r => r.model.unit === 'cycles');
    this._minSpan = Math.max(span(this._bounds) * MIN_SPAN_FRACTION, cycles ? MIN_SPAN_CYCLES : MIN_SPAN_US);
    this._view = { ...this._bounds };
    this._relayout();
    this._updateLegend();
    this.requestDraw();
  }

  setColorBy(by: ColorBy): void {
    this._colorBy = by;
    this._updateLegend();
    this.requestDraw();
  }

  get view(): View {
    return { ...this._view };
  }

  /** Zoom about the centre of the view (factor < 1 zooms in). */
  zoom(factor: number): void {
    const centre = (this._view.start + this._view.end) / 2;
    this._setView(zoomAt(this._view, centre, factor, this._bounds, this._minSpan));
  }

  /** Pan by a fraction of the visible span (positive: later). */
  pan(fraction: number): void {
    this._setView(panBy(this._view, fraction * span(this._view), this._bounds, this._minSpan));
  }

  reset(): void {
    this._setView({ ...this._bounds });
  }

  /** Redraw on the next animation frame (coalesces wheel and drag events). */
  requestDraw(): void {
    if (this._frame !== null || this._disposed) {
      return;
    }
    const raf =
      typeof requestAnimationFrame === 'function' ? requestAnimationFrame : (f: () => void) => setTimeout(f, 16);
    this._frame = raf(() => {
      this._frame = null;
      this.draw();
    }) as unknown as number;
  }

  /** Draw now (a frame already asked for is dropped): the explorer times slider release -> redraw finished. */
  drawNow(): void {
    if (this._frame !== null && typeof cancelAnimationFrame === 'function') {
      cancelAnimationFrame(this._frame);
    }
    this._frame = null;
    if (!this._disposed) {
      this.draw();
    }
  }

  /** Start following the container's width (call once the node is in the document). */
  observeResize(): void {
    if (this._observer || typeof ResizeObserver !== 'function') {
      return;
    }
    this._observer = new ResizeObserver(() => {
      if (this.node.clientWidth && this.node.clientWidth !== this._lastWidth) {
        this.requestDraw();
      }
    });
    this._observer.observe(this.node);
  }

  dispose(): void {
    this._disposed = true;
    if (this._observer) {
      this._observer.disconnect();
      this._observer = null;
    }
  }

  /** Draw the whole timeline for the current view and width. */
  draw(): void {
    this._lastWidth = this.node.clientWidth;
    this._width = Math.max(MIN_PLOT_W, (this.node.clientWidth || DEFAULT_W) - LABEL_W - 2);
    this.node.dataset.viewStart = String(this._view.start);
    this.node.dataset.viewEnd = String(this._view.end);
    this._hover = drawFrame(this._svg, {
      view: this._view,
      width: this._width,
      height: AXIS_H + this._placement.height + 6,
      placement: this._placement,
      models: this._runs.map(r => r.model),
      colorBy: this._colorBy,
      collapsed: (run, pid) => this._isCollapsed(run, pid)
    });
  }

  private _updateLegend(): void {
    const entries = legendEntries(
      this._runs.map(r => r.model),
      this._colorBy
    );
    setLegend(this.legend, entries);
  }

  // -- layout -------------------------------------------------------------------------------------------------------

  private _isCollapsed(run: number, pid: number): boolean {
    return this._collapsed.has(`${run}:${pid}`);
  }

  private _relayout(): void {
    this._placement = placeRuns(this._runs, (run, pid) => this._isCollapsed(run, pid));
    this._layout = { rows: this._placement.rows, height: this._placement.height };
  }

  // -- interaction --------------------------------------------------------------------------------------------------

  private _setView(v: View): void {
    if (v.start !== this._view.start || v.end !== this._view.end) {
      this._view = v;
      this.requestDraw();
    }
  }

  private _local(e: MouseEvent): { x: number; y: number } {
    const r = this._svg.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  private _wire(): void {
    const svg = this._svg;
    svg.addEventListener('wheel', (e: WheelEvent) => this._onWheel(e), { passive: false });
    svg.addEventListener('pointerdown', (e: PointerEvent) => this._onPointerDown(e));
    svg.addEventListener('pointermove', (e: PointerEvent) => this._onPointerMove(e));
    svg.addEventListener('pointerup', (e: PointerEvent) => this._onPointerEnd(e));
    svg.addEventListener('pointercancel', (e: PointerEvent) => this._onPointerEnd(e));
    svg.addEventListener('pointerleave', () => this._hideTip());
    svg.addEventListener('dblclick', (e: MouseEvent) => {
      if (this._local(e).x >= LABEL_W) {
        this.reset();
      }
    });
    this.node.addEventListener('keydown', (e: KeyboardEvent) => this._onKey(e));
  }

  /** Ctrl/Cmd + wheel zooms about the pointer, Shift + wheel pans; a plain wheel is left to the page. */
  private _onWheel(e: WheelEvent): void {
    const action = wheelAction(e);
    const { x } = this._local(e);
    const whole = this._view.start <= this._bounds.start && this._view.end >= this._bounds.end;
    if (x < LABEL_W || action === 'scroll' || (action === 'pan' && whole)) {
      return; // the notebook scrolls
    }
    e.preventDefault();
    this._hideTip();
    if (action === 'pan') {
      const dt = panPixels(e) * perPixel(this._view, this._width);
      this._setView(panBy(this._view, dt, this._bounds, this._minSpan));
    } else {
      const t = tOf(x - LABEL_W, this._view, this._width);
      this._setView(zoomAt(this._view, t, wheelFactor(e.deltaY, e.deltaMode), this._bounds, this._minSpan));
    }
  }

  private _onPointerDown(e: PointerEvent): void {
    const { x, y } = this._local(e);
    if (e.button !== 0) {
      return;
    }
    if (x < LABEL_W) {
      this._labelClick(y);
      return;
    }
    this._drag = { x: e.clientX, id: e.pointerId, view: this._view, captured: false };
  }

  private _onPointerMove(e: PointerEvent): void {
    const drag = this._drag;
    if (!drag || drag.id !== e.pointerId) {
      this._hoverAt(this._local(e), e);
      return;
    }
    const dx = e.clientX - drag.x;
    if (!drag.captured) {
      if (Math.abs(dx) < DRAG_SLOP_PX) {
        return;
      }
      // Capture only once a drag starts, so a plain click still reaches what is under the pointer.
      drag.captured = true;
      this._svg.setPointerCapture(e.pointerId);
      this.node.classList.add('ptort-dragging');
      this._hideTip();
    }
    this._setView(panBy(drag.view, -dx * perPixel(drag.view, this._width), this._bounds, this._minSpan));
  }

  private _onPointerEnd(e: PointerEvent): void {
    if (this._drag && this._drag.id === e.pointerId) {
      this._drag = null;
      this.node.classList.remove('ptort-dragging');
    }
  }

  private _onKey(e: KeyboardEvent): void {
    const command = Object.prototype.hasOwnProperty.call(KEYS, e.key) ? KEYS[e.key] : undefined;
    if (!command || e.ctrlKey || e.metaKey || e.altKey) {
      return;
    }
    command(this);
    e.preventDefault();
    e.stopPropagation(); // keep JupyterLab's notebook shortcuts (e.g. "0 0" restarts the kernel) out of it
  }

  private _labelClick(y: number): void {
    const rb = rowAt(this._layout, y - AXIS_H) as PlacedRow | null;
    if (rb && rb.kind === 'group' && rb.group) {
      const key = `${rb.run}:${rb.group.pid}`;
      if (this._collapsed.has(key)) {
        this._collapsed.delete(key);
      } else {
        this._collapsed.add(key);
      }
      this._relayout();
      this.requestDraw();
    }
  }

  private _hideTip(): void {
    this._tip.hidden = true;
    this._hover?.setAttribute('visibility', 'hidden');
  }

  /** Outline a hovered slice on its row. */
  private _outline(s: { start: number; end: number }, rb: RowBox): void {
    if (!this._hover) {
      return;
    }
    const x0 = xOf(s.start, this._view, this._width);
    const x1 = xOf(s.end, this._view, this._width);
    this._hover.setAttribute('x', String(x0 - 1));
    this._hover.setAttribute('width', String(Math.max(x1 - x0, 1) + 2));
    this._hover.setAttribute('y', String(AXIS_H + rb.y - 1));
    this._hover.setAttribute('height', String(rb.h + 2));
    this._hover.setAttribute('visibility', 'visible');
  }

  /** The tooltip lines at time t on a row: its slice, its channel, or the launch; [] for nothing. */
  private _tipLines(rb: PlacedRow, t: number): string[] {
    const model = this._runs[rb.run].model;
    if ((rb.kind === 'lane' || rb.kind === 'stall') && rb.row) {
      const s = sliceAt(rb.row, t, HOVER_SLOP_PX * perPixel(this._view, this._width));
      if (s) {
        this._outline(s, rb);
        return sliceTooltip(s, model);
      }
      this._hover?.setAttribute('visibility', 'hidden');
      return inLaunch(model.launch, t) ? launchTooltip(model.launch!, model) : [];
    }
    if (rb.kind === 'counter' && rb.counter) {
      return counterTooltip(rb.counter, t, model.unit);
    }
    return rb.kind === 'group' && inLaunch(model.launch, t) ? launchTooltip(model.launch!, model) : [];
  }

  private _hoverAt(p: { x: number; y: number }, e: MouseEvent): void {
    const px = p.x - LABEL_W;
    const rb = rowAt(this._layout, p.y - AXIS_H) as PlacedRow | null;
    const lines = px < 0 || p.y < AXIS_H || !rb ? [] : this._tipLines(rb, tOf(px, this._view, this._width));
    if (!lines.length) {
      this._hideTip();
      return;
    }
    setLines(this._tip, lines);
    this._tip.hidden = false;
    const box = this.node.getBoundingClientRect();
    const tipW = this._tip.offsetWidth || 220;
    let left = e.clientX - box.left + 14;
    if (left + tipW > box.width) {
      left = Math.max(0, e.clientX - box.left - tipW - 10);
    }
    this._tip.style.left = `${left}px`;
    this._tip.style.top = `${e.clientY - box.top + 14}px`;
  }

  private _svg: SVGSVGElement;
  private _tip: HTMLDivElement;
  private _hover: SVGRectElement | null = null;
  private _runs: RunView[] = [];
  private _layout: RowLayout = { rows: [], height: 0 };
  private _placement: Placement = { rows: [], height: 0, sections: [] };
  private _collapsed = new Set<string>();
  private _bounds: View = { start: 0, end: 1 };
  private _view: View = { start: 0, end: 1 };
  private _minSpan = 1;
  private _width = DEFAULT_W - LABEL_W;
  private _lastWidth = 0;
  private _colorBy: ColorBy = 'op';
  private _frame: number | null = null;
  private _drag: { x: number; id: number; view: View; captured: boolean } | null = null;
  private _observer: ResizeObserver | null = null;
  private _disposed = false;
}

function inLaunch(launch: Launch | null, t: number): boolean {
  return launch !== null && launch.start <= t && t < launch.end;
}
