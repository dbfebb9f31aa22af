/**
 * The pipeline diagram drawn in the browser: DOT -> Graphviz (WebAssembly, @viz-js/viz, loaded on first use) ->
 * sanitized inline SVG with Ctrl/Cmd + wheel zoom, drag pan, fit, and node details on click. Its colours follow the
 * JupyterLab theme (style/base.css restyles Graphviz's fills and strokes with the theme's variables).
 */

import {
  MAX_DOT_CHARS,
  PipelineDiagram,
  describePipeline,
  nodeIdFromTitle,
  nodeInfo,
  sanitizeSvg
} from './logic/diagram';
import { BOX_ZOOM_STEP, Box, fitBox, panBox, wheelAction, wheelFactor, zoomBox } from './logic/scale';
import { button, buttonGroup, el, setLines } from './dom';

type VizInstance = { renderSVGElement(dot: string): SVGSVGElement };

let vizPromise: Promise<VizInstance> | null = null;

/** The Graphviz instance, loaded once per page (a separate chunk: the trace view does not pay for it). */
export function loadViz(): Promise<VizInstance> {
  if (!vizPromise) {
    vizPromise = import(/* webpackChunkName: "viz" */ '@viz-js/viz').then(m => m.instance());
    vizPromise.catch(() => {
      vizPromise = null; // let a later output retry
    });
  }
  return vizPromise;
}

const MIN_H = 60;
const MAX_H = 420;
const PT_TO_PX = 96 / 72;
/** A press that moves less than this many pixels (|dx| + |dy|) is a click, not a pan. */
const DRAG_SLOP_PX = 3;
/** "Fit" never makes the diagram's text smaller than this: a wider diagram scrolls sideways instead. */
export const MIN_TEXT_PX = 9;
/** Room for the viewport's horizontal scroll bar when a readable fit is wider than the output. */
const SCROLLBAR_PX = 16;
const FIT_MARGIN = 0.02;

export class DiagramView {
  readonly node: HTMLDivElement;

  constructor(diagram: PipelineDiagram, caption?: string) {
    this._diagram = diagram;
    this.node = el('div', 'ptort-diagram');
    const bar = el('div', 'ptort-toolbar');
    bar.appendChild(el('span', 'ptort-caption', caption || describePipeline(diagram)));
    bar.appendChild(el('span', 'ptort-spacer'));
    bar.appendChild(
      buttonGroup(
        button('\u2212', 'Zoom out (or Ctrl/Cmd + wheel)', () => this._zoomCentre(1 / BOX_ZOOM_STEP)),
        button('+', 'Zoom in (or Ctrl/Cmd + wheel)', () => this._zoomCentre(BOX_ZOOM_STEP)),
        button('Fit', 'Fit the whole diagram (or double-click it)', () => this._fit()),
        button('DOT', 'Show or hide the DOT source', () => this._toggleSource())
      )
    );
    this.node.appendChild(bar);
    this._viewport = el('div', 'ptort-diagram-viewport');
    this._viewport.appendChild(el('div', 'ptort-note', 'laying out the diagram\u2026'));
    this.node.appendChild(this._viewport);
    this._info = el('div', 'ptort-diagram-info');
    this.node.appendChild(this._info);
    this._source = el('pre', 'ptort-dot-source', diagram.dot);
    this._source.hidden = true;
    this.node.appendChild(this._source);
  }

  /** Lay out and insert the SVG; resolves when done (or when the fallback text is shown). */
  async render(): Promise<void> {
    if (this._diagram.dot.length > MAX_DOT_CHARS) {
      this._fail(`diagram too large to lay out here (${this._diagram.dot.length} characters of DOT)`);
      return;
    }
    let svg: SVGSVGElement;
    try {
      const viz = await loadViz();
      svg = viz.renderSVGElement(this._diagram.dot);
    } catch (e) {
      this._fail(`diagram not drawn: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      return;
    }
    if (this._disposed) {
      return;
    }
    sanitizeSvg(svg as unknown as Parameters<typeof sanitizeSvg>[0]);
    const vb = svg.viewBox && svg.viewBox.baseVal;
    const w = parseFloat(svg.getAttribute('width') || '') || (vb ? vb.width : 100);
    const h = parseFloat(svg.getAttribute('height') || '') || (vb ? vb.height : 100);
    this._content = vb && vb.width > 0 ? { x: vb.x, y: vb.y, w: vb.width, h: vb.height } : { x: 0, y: 0, w, h };
    this._readableScale = readableScale(svg);
    this._naturalH = Math.min(MAX_H, Math.max(MIN_H, h * PT_TO_PX));
    svg.removeAttribute('width');
    svg.removeAttribute('height');
    svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    svg.classList.add('ptort-diagram-svg');
    this._svg = svg;
    this._viewport.textContent = '';
    this._viewport.style.height = `${Math.round(this._naturalH)}px`;
    this._viewport.appendChild(svg);
    this._wire();
    this._fit();
    this._observer = new ResizeObserver(() => {
      if (!this._zoomed) {
        this._fit();
      }
    });
    this._observer.observe(this._viewport);
  }

  dispose(): void {
    this._disposed = true;
    if (this._observer) {
      this._observer.disconnect();
      this._observer = null;
    }
  }

  private _fail(message: string): void {
    this._viewport.textContent = '';
    this._viewport.style.height = '';
    this._viewport.appendChild(el('div', 'ptort-note', message));
    this._source.hidden = false;
  }

  private _size(): [number, number] {
    return [this._viewport.clientWidth || 600, this._viewport.clientHeight || this._naturalH];
  }

  private _fitted(): Box {
    const [vw, vh] = this._size();
    return fitBox(this._content, vw, vh);
  }

  private _apply(): void {
    if (this._svg) {
      const b = this._box;
      this._svg.setAttribute('viewBox', `${b.x} ${b.y} ${b.w} ${b.h}`);
    }
  }

  /** Show the whole diagram; when that would make its text unreadable (a long chain in a narrow output), show it
   * at the smallest readable scale instead, scrolling sideways (the viewport's scroll bar, or Shift + wheel). */
  private _fit(): void {
    this._zoomed = false;
    const [vw] = this._size();
    const c = this._content;
    const m = FIT_MARGIN;
    const whole = { x: c.x - c.w * m, y: c.y - c.h * m, w: c.w * (1 + 2 * m), h: c.h * (1 + 2 * m) };
    const s = this._readableScale;
    if (this._svg && s > 0 && vw / whole.w < s) {
      this._setScrolling(true);
      this._svg.style.width = `${Math.ceil(whole.w * s)}px`;
      this._svg.style.height = `${Math.ceil(whole.h * s)}px`;
      this._viewport.style.height = `${Math.round(Math.min(MAX_H, whole.h * s + SCROLLBAR_PX))}px`;
      this._box = whole;
    } else {
      this._setScrolling(false);
      this._viewport.style.height = `${Math.round(this._naturalH)}px`;
      this._box = this._fitted();
    }
    this._apply();
  }

  /** Scroll mode on or off: the SVG at a fixed readable size in a scrolling viewport, or filling the viewport. */
  private _setScrolling(on: boolean): void {
    this._scrolling = on;
    this._viewport.classList.toggle('ptort-diagram-scroll', on);
    this._viewport.dataset.fit = on ? 'scroll' : 'fit';
    if (!on && this._svg) {
      this._svg.style.width = '';
      this._svg.style.height = '';
      this._viewport.scrollLeft = 0;
      this._viewport.scrollTop = 0;
    }
  }

  /** Before a zoom or pan of the view box: leave scroll mode, keeping the part that was in view where it was. */
  private _leaveScrolling(): void {
    if (!this._scrolling) {
      return;
    }
    const s = this._readableScale;
    const [left, top] = [this._viewport.scrollLeft, this._viewport.scrollTop];
    this._setScrolling(false);
    const [vw, vh] = this._size();
    this._box = { x: this._box.x + left / s, y: this._box.y + top / s, w: vw / s, h: vh / s };
  }

  private _zoomCentre(factor: number): void {
    this._leaveScrolling();
    this._box = zoomBox(this._box, 0.5, 0.5, factor, this._fitted());
    this._zoomed = true;
    this._apply();
  }

  private _toggleSource(): void {
    this._source.hidden = !this._source.hidden;
  }

  private _wire(): void {
    const vp = this._viewport;
    vp.addEventListener('wheel', (e: WheelEvent) => this._onWheel(e), { passive: false });
    vp.addEventListener('pointerdown', (e: PointerEvent) => this._onPointerDown(e));
    vp.addEventListener('pointermove', (e: PointerEvent) => this._onPointerMove(e));
    vp.addEventListener('pointerup', (e: PointerEvent) => this._onPointerEnd(e, true));
    vp.addEventListener('pointercancel', (e: PointerEvent) => this._onPointerEnd(e, false));
    vp.addEventListener('dblclick', () => this._fit());
  }

  /** Ctrl/Cmd + wheel zooms about the pointer; any other wheel is left to the page (the notebook scrolls). */
  private _onWheel(e: WheelEvent): void {
    if (wheelAction(e) !== 'zoom') {
      return;
    }
    e.preventDefault();
    this._leaveScrolling();
    const r = this._viewport.getBoundingClientRect();
    const fx = r.width > 0 ? (e.clientX - r.left) / r.width : 0.5;
    const fy = r.height > 0 ? (e.clientY - r.top) / r.height : 0.5;
    this._box = zoomBox(this._box, fx, fy, wheelFactor(e.deltaY, e.deltaMode), this._fitted());
    this._zoomed = true;
    this._apply();
  }

  private _onPointerDown(e: PointerEvent): void {
    if (e.button !== 0) {
      return;
    }
    // The target is kept from here: once the pointer is captured, later events target the viewport instead.
    this._drag = { x: e.clientX, y: e.clientY, id: e.pointerId, moved: false, target: e.target };
  }

  private _onPointerMove(e: PointerEvent): void {
    const drag = this._drag;
    if (!drag || drag.id !== e.pointerId) {
      return;
    }
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (!drag.moved) {
      if (Math.abs(dx) + Math.abs(dy) < DRAG_SLOP_PX) {
        return;
      }
      // Capture only once a drag starts, so that a click stays a click on the node under the pointer.
      drag.moved = true;
      this._viewport.setPointerCapture(e.pointerId);
      this._viewport.classList.add('ptort-dragging');
    }
    drag.x = e.clientX;
    drag.y = e.clientY;
    if (this._scrolling) {
      this._viewport.scrollLeft -= dx; // a readable fit pans by scrolling, as its scroll bar does
      this._viewport.scrollTop -= dy;
      return;
    }
    const [vw, vh] = this._size();
    this._box = panBox(this._box, dx, dy, vw, vh);
    this._zoomed = true;
    this._apply();
  }

  private _onPointerEnd(e: PointerEvent, released: boolean): void {
    const drag = this._drag;
    if (!drag || drag.id !== e.pointerId) {
      return;
    }
    this._drag = null;
    this._viewport.classList.remove('ptort-dragging');
    if (released && !drag.moved) {
      this._clicked(drag.target);
    }
  }

  private _clicked(target: EventTarget | null): void {
    const t = target as Element | null;
    const g = t && typeof t.closest === 'function' ? t.closest('g.node') : null;
    if (this._selected) {
      this._selected.classList.remove('ptort-selected');
      this._selected = null;
    }
    if (!g) {
      setLines(this._info, []);
      return;
    }
    const title = g.querySelector('title');
    const id = nodeIdFromTitle(title ? title.textContent || '' : '');
    g.classList.add('ptort-selected');
    this._selected = g;
    setLines(this._info, nodeInfo(this._diagram, id));
  }

  private _diagram: PipelineDiagram;
  private _viewport: HTMLDivElement;
  private _info: HTMLDivElement;
  private _source: HTMLPreElement;
  private _svg: SVGSVGElement | null = null;
  private _content: Box = { x: 0, y: 0, w: 100, h: 100 };
  private _box: Box = { x: 0, y: 0, w: 100, h: 100 };
  private _naturalH = 200;
  private _readableScale = 0;
  private _scrolling = false;
  private _zoomed = false;
  private _disposed = false;
  private _selected: Element | null = null;
  private _drag: { x: number; y: number; id: number; moved: boolean; target: EventTarget | null } | null = null;
  private _observer: ResizeObserver | null = null;
}

/** Pixels per diagram unit at which the diagram's smallest text is MIN_TEXT_PX high (0: it has no sized text). */
function readableScale(svg: SVGSVGElement): number {
  let smallest = Infinity;
  svg.querySelectorAll('text').forEach(t => {
    const size = parseFloat(t.getAttribute('font-size') || '');
    if (size > 0) {
      smallest = Math.min(smallest, size);
    }
  });
  return isFinite(smallest) ? MIN_TEXT_PX / smallest : 0;
}
