/**
 * The interactive timeline: one row per pipe or stage grouped per core, channel fill rows, a time axis with wheel
 * zoom (around the pointer), drag pan, double-click reset, keyboard (+ - 0 arrows) and hover tooltips.
 * Plain SVG; the geometry comes from logic/layout.ts and logic/scale.ts.
 */

import { TimelineModel } from './logic/trace';
import {
  ColorBy,
  RowBox,
  RowLayout,
  counterPath,
  layoutRows,
  rowAt,
  sliceAt,
  sliceColor,
  visibleRects
} from './logic/layout';
import { View, niceStep, panBy, perPixel, span, tOf, ticks, wheelFactor, xOf, zoomAt } from './logic/scale';
import { counterTooltip, fitLabel, runSummary, sliceLabel, sliceTooltip, tickLabel } from './logic/format';
import { el, setLines, svgEl } from './dom';

export interface RunView {
  label: string;
  model: TimelineModel;
}

export const LABEL_W = 170;
const AXIS_H = 22;
const SECTION_H = 20;
const DEFAULT_W = 900;

interface PlacedRow extends RowBox {
  run: number;
}

export class TimelineView {
  readonly node: HTMLDivElement;

  constructor() {
    this.node = el('div', 'ptort-timeline');
    this.node.tabIndex = 0;
    this.node.setAttribute('role', 'figure');
    this.node.setAttribute(
      'aria-label',
      'Timeline. Wheel to zoom, drag to pan, double-click or 0 to reset, + and - to zoom, arrows to pan.'
    );
    this._svg = svgEl('svg', { class: 'ptort-timeline-svg' });
    this.node.appendChild(this._svg);
    this._tip = el('div', 'ptort-tooltip');
    this._tip.hidden = true;
    this.node.appendChild(this._tip);
    this._wire();
  }

  /** Show these runs stacked on one shared time axis; the view resets to the whole trace. */
  setRuns(runs: RunView[]): void {
    this._runs = runs;
    const starts = runs.map(r => r.model.start);
    const ends = runs.map(r => r.model.end);
    this._bounds = runs.length
      ? { start: Math.min(...starts), end: Math.max(...ends) }
      : { start: 0, end: 1 };
    const cycles = runs.every(r => r.model.unit === 'cycles');
    this._minSpan = Math.max(span(this._bounds) * 1e-6, cycles ? 10 : 0.001);
    this._view = { ...this._bounds };
    this._relayout();
    this.requestDraw();
  }

  setColorBy(by: ColorBy): void {
    this._colorBy = by;
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
    const raf = typeof requestAnimationFrame === 'function' ? requestAnimationFrame : (f: () => void) => setTimeout(f, 16);
    this._frame = raf(() => {
      this._frame = null;
      this.draw();
    }) as unknown as number;
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

  draw(): void {
    const total = this.node.clientWidth || DEFAULT_W;
    this._lastWidth = this.node.clientWidth;
    const width = Math.max(200, total - LABEL_W - 2);
    this._width = width;
    const view = this._view;
    const layout = this._layout;
    const height = AXIS_H + layout.height + 6;
    const svg = this._svg;
    svg.textContent = '';
    svg.setAttribute('width', String(LABEL_W + width));
    svg.setAttribute('height', String(height));
    this.node.dataset.viewStart = String(view.start);
    this.node.dataset.viewEnd = String(view.end);

    const labels = svgEl('g', { class: 'ptort-labels' });
    const plot = svgEl('svg', { class: 'ptort-plot', x: LABEL_W, y: 0, width, height, overflow: 'hidden' });
    svg.appendChild(plot);
    svg.appendChild(labels);

    // Bands and labels.
    for (const rb of layout.rows as PlacedRow[]) {
      const y = AXIS_H + rb.y;
      if (rb.kind === 'section' || rb.kind === 'group') {
        plot.appendChild(
          svgEl('rect', { class: `ptort-band ptort-band-${rb.kind}`, x: 0, y, width, height: rb.h })
        );
        labels.appendChild(
          svgEl('rect', { class: `ptort-band ptort-band-${rb.kind}`, x: 0, y, width: LABEL_W, height: rb.h })
        );
        const collapsible = rb.kind === 'group' && rb.group !== undefined;
        const mark = collapsible ? (this._isCollapsed(rb.run, rb.group!.pid) ? '\u25b8 ' : '\u25be ') : '';
        const text = svgEl(
          'text',
          { class: `ptort-label ptort-label-${rb.kind}`, x: 4, y: y + rb.h - 5 },
          fitLabel(mark + rb.label, rb.kind === 'section' ? LABEL_W + width : LABEL_W - 6)
        );
        labels.appendChild(text);
      } else {
        labels.appendChild(
          svgEl(
            'text',
            { class: `ptort-label ptort-label-${rb.kind}`, x: 14, y: y + rb.h - (rb.kind === 'stall' ? 2 : 5) },
            fitLabel(rb.label, LABEL_W - 18, rb.kind === 'stall' ? 5.5 : 6.5)
          )
        );
      }
    }

    // Axis and grid.
    const tks = ticks(view, width, 90);
    const step = tks.length > 1 ? tks[1] - tks[0] : niceStep(span(view), 1);
    const unit = this._runs.length ? this._runs[0].model.unit : 'cycles';
    const axis = svgEl('g', { class: 'ptort-axis' });
    for (const t of tks) {
      const x = xOf(t, view, width);
      axis.appendChild(svgEl('line', { class: 'ptort-grid', x1: x, x2: x, y1: AXIS_H - 4, y2: height }));
      axis.appendChild(svgEl('text', { class: 'ptort-tick', x: x + 3, y: AXIS_H - 8 }, tickLabel(t, unit, step)));
    }
    plot.appendChild(axis);
    labels.appendChild(
      svgEl('text', { class: 'ptort-axis-unit', x: 4, y: AXIS_H - 8 }, unit === 'cycles' ? 'cycles' : 'time')
    );

    // Slices and channel rows.
    const content = svgEl('g', { class: 'ptort-content' });
    for (const rb of layout.rows as PlacedRow[]) {
      const y = AXIS_H + rb.y;
      if ((rb.kind === 'lane' || rb.kind === 'stall') && rb.row) {
        const h = rb.h;
        for (const r of visibleRects(rb.row, view, width, 1)) {
          const s = r.slice;
          const cls =
            s === null ? 'ptort-slice ptort-cluster' : s.kind === 'stall' ? 'ptort-slice ptort-stall' : 'ptort-slice';
          content.appendChild(
            svgEl('rect', {
              class: cls,
              x: r.x.toFixed(2),
              y: y,
              width: r.w.toFixed(2),
              height: h,
              fill: s === null ? '#8a8a8a' : sliceColor(s, this._colorBy)
            })
          );
          if (s !== null && s.kind === 'span' && r.w > 34) {
            const label = fitLabel(sliceLabel(s), Math.min(r.w, width - Math.max(r.x, 0)));
            if (label) {
              content.appendChild(
                svgEl('text', { class: 'ptort-slice-label', x: Math.max(r.x, 0) + 3, y: y + h - 5 }, label)
              );
            }
          }
        }
      } else if (rb.kind === 'counter' && rb.counter) {
        const g = svgEl('g', { class: 'ptort-counter', transform: `translate(0,${y})` });
        g.appendChild(svgEl('line', { class: 'ptort-counter-cap', x1: 0, x2: width, y1: 2, y2: 2 }));
        g.appendChild(svgEl('line', { class: 'ptort-counter-base', x1: 0, x2: width, y1: rb.h, y2: rb.h }));
        const d = counterPath(rb.counter, view, width, rb.h);
        if (d) {
          g.appendChild(svgEl('path', { class: 'ptort-counter-fill', d }));
        }
        content.appendChild(g);
      }
    }
    plot.appendChild(content);

    // Makespan of each run, over that run's rows.
    this._sections.forEach((sec, i) => {
      const m = this._runs[i].model;
      const end = m.makespan ?? m.end;
      if (end < view.start || end > view.end) {
        return;
      }
      const x = xOf(end, view, width);
      plot.appendChild(
        svgEl('line', { class: 'ptort-makespan', x1: x, x2: x, y1: AXIS_H + sec.top, y2: AXIS_H + sec.bottom })
      );
    });

    this._hover = svgEl('rect', { class: 'ptort-hover', x: 0, y: 0, width: 0, height: 0, visibility: 'hidden' });
    plot.appendChild(this._hover);
  }

  // -- layout -------------------------------------------------------------------------------------------------------

  private _isCollapsed(run: number, pid: number): boolean {
    return this._collapsed.has(`${run}:${pid}`);
  }

  private _relayout(): void {
    const rows: PlacedRow[] = [];
    this._sections = [];
    let y = 0;
    const many = this._runs.length > 1;
    this._runs.forEach((run, i) => {
      const top = y;
      if (many) {
        rows.push({ kind: 'section', y, h: SECTION_H, label: runSummary(run.label, run.model), run: i });
        y += SECTION_H;
      }
      const collapsed = new Set<number>();
      for (const g of run.model.groups) {
        if (this._isCollapsed(i, g.pid)) {
          collapsed.add(g.pid);
        }
      }
      const lay = layoutRows(run.model, collapsed, y);
      for (const r of lay.rows) {
        rows.push({ ...r, run: i });
      }
      y += lay.height + (many ? 6 : 0);
      this._sections.push({ top, bottom: y });
    });
    this._layout = { rows, height: y } as RowLayout;
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
    svg.addEventListener(
      'wheel',
      (e: WheelEvent) => {
        const { x } = this._local(e);
        if (x < LABEL_W) {
          return; // let the notebook scroll when the pointer is over the labels
        }
        e.preventDefault();
        this._hideTip();
        const px = x - LABEL_W;
        if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
          const dx = e.deltaMode === 1 ? e.deltaX * 16 : e.deltaX;
          this._setView(panBy(this._view, dx * perPixel(this._view, this._width), this._bounds, this._minSpan));
        } else {
          const t = tOf(px, this._view, this._width);
          this._setView(zoomAt(this._view, t, wheelFactor(e.deltaY, e.deltaMode), this._bounds, this._minSpan));
        }
      },
      { passive: false }
    );
    svg.addEventListener('pointerdown', (e: PointerEvent) => {
      const { x, y } = this._local(e);
      if (e.button !== 0) {
        return;
      }
      if (x < LABEL_W) {
        this._labelClick(y);
        return;
      }
      this._drag = { x: e.clientX, id: e.pointerId, view: this._view };
      svg.setPointerCapture(e.pointerId);
      this.node.classList.add('ptort-dragging');
      this._hideTip();
    });
    svg.addEventListener('pointermove', (e: PointerEvent) => {
      if (this._drag && this._drag.id === e.pointerId) {
        const dx = e.clientX - this._drag.x;
        const dt = -dx * perPixel(this._drag.view, this._width);
        this._setView(panBy(this._drag.view, dt, this._bounds, this._minSpan));
        return;
      }
      this._hoverAt(this._local(e), e);
    });
    const end = (e: PointerEvent): void => {
      if (this._drag && this._drag.id === e.pointerId) {
        this._drag = null;
        this.node.classList.remove('ptort-dragging');
      }
    };
    svg.addEventListener('pointerup', end);
    svg.addEventListener('pointercancel', end);
    svg.addEventListener('pointerleave', () => this._hideTip());
    svg.addEventListener('dblclick', (e: MouseEvent) => {
      if (this._local(e).x >= LABEL_W) {
        this.reset();
      }
    });
    this.node.addEventListener('keydown', (e: KeyboardEvent) => {
      const k = e.key;
      if (k === '+' || k === '=') {
        this.zoom(0.7);
      } else if (k === '-' || k === '_') {
        this.zoom(1 / 0.7);
      } else if (k === '0') {
        this.reset();
      } else if (k === 'ArrowLeft') {
        this.pan(-0.15);
      } else if (k === 'ArrowRight') {
        this.pan(0.15);
      } else {
        return;
      }
      e.preventDefault();
      e.stopPropagation(); // keep JupyterLab's notebook shortcuts (e.g. "0 0" restarts the kernel) out of it
    });
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
    if (this._hover) {
      this._hover.setAttribute('visibility', 'hidden');
    }
  }

  private _hoverAt(p: { x: number; y: number }, e: MouseEvent): void {
    const px = p.x - LABEL_W;
    const rb = rowAt(this._layout, p.y - AXIS_H) as PlacedRow | null;
    if (px < 0 || p.y < AXIS_H || !rb) {
      this._hideTip();
      return;
    }
    const model = this._runs[rb.run].model;
    const t = tOf(px, this._view, this._width);
    let lines: string[] = [];
    if ((rb.kind === 'lane' || rb.kind === 'stall') && rb.row) {
      const s = sliceAt(rb.row, t, 3 * perPixel(this._view, this._width));
      if (s) {
        lines = sliceTooltip(s, model);
        if (this._hover) {
          const x0 = xOf(s.start, this._view, this._width);
          const x1 = xOf(s.end, this._view, this._width);
          this._hover.setAttribute('x', String(x0 - 1));
          this._hover.setAttribute('width', String(Math.max(x1 - x0, 1) + 2));
          this._hover.setAttribute('y', String(AXIS_H + rb.y - 1));
          this._hover.setAttribute('height', String(rb.h + 2));
          this._hover.setAttribute('visibility', 'visible');
        }
      } else if (this._hover) {
        this._hover.setAttribute('visibility', 'hidden');
      }
    } else if (rb.kind === 'counter' && rb.counter) {
      lines = counterTooltip(rb.counter, t, model.unit);
    }
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
  private _sections: { top: number; bottom: number }[] = [];
  private _collapsed = new Set<string>();
  private _bounds: View = { start: 0, end: 1 };
  private _view: View = { start: 0, end: 1 };
  private _minSpan = 1;
  private _width = DEFAULT_W - LABEL_W;
  private _lastWidth = 0;
  private _colorBy: ColorBy = 'op';
  private _frame: number | null = null;
  private _drag: { x: number; id: number; view: View } | null = null;
  private _observer: ResizeObserver | null = null;
  private _disposed = false;
}
