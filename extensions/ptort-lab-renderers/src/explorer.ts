/**
 * The explorer's view as an anywidget ES module: sliders, a busy indicator, the verdict, the runs' table and both
 * runs' timelines, drawn client-side with the JupyterLab renderer's TimelineView from compact run data
 * (logic/compact.ts). Built by scripts/build-explorer.mjs into ptort_lab/notebook/static/explorer.js; it needs no
 * JupyterLab extension (JupyterLab, Notebook 7 and VS Code load it through anywidget).
 *
 * Protocol (traitlets of ptort_lab.notebook.widgets.Explorer):
 *   controls  Python -> view  {sliders: [{name, label, min, max, value, options?, disabled, title}], equal_cores}
 *   view      Python -> view  {rid, knobs, runs: [CompactRun], table: [...], verdict, summary, note, error}
 *   request   view -> Python  {rid, knobs: {name: value}, equal_cores}   (set on slider release)
 * At most one request is in flight per view: a slider moved again while a run is in flight replaces the pending
 * request (the runs in between are never asked for), and a reply for an older request is not drawn.
 * The view never waits forever for a reply (replyWatch.ts). The kernel answers an interrupted run too, but a
 * reply can still be lost: when the kernel is idle for a few seconds with the request unanswered (or, in a host
 * that does not show the kernel's status, after LOST_AFTER_MS), the view stops waiting and says so. When the
 * kernel restarts, the widget's connection is gone for good: the controls are disabled and the view says to re-run
 * the cell.
 * Page-side timings (slider release -> redraw finished) go to `window.ptortExplorerTimings`.
 */

import { ColorBy } from './logic/colors';
import { modelFromCompact } from './logic/compact';
import { ZOOM_STEP } from './logic/scale';
import { keyedValue } from './logic/sliderKeys';
import { RunView, TimelineView } from './timelineView';
import { button, buttonGroup, el } from './dom';
import { LOST_MESSAGE, RESTARTED_MESSAGE, ReplyWatch, kernelStatus } from './replyWatch';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Slider {
  name: string;
  label: string;
  min: number;
  max: number;
  value: number;
  /** For a choice slider (tile): [label, value] per position; the slider's value is the position. */
  options?: [string, Json][];
  disabled: boolean;
  title: string;
}

interface Controls {
  sliders: Slider[];
  equal_cores: boolean;
  equal_cores_label?: string;
}

interface TableRow {
  run: string;
  cycles: number;
  us: number;
  overlap_pct: number;
  tasks: number;
  cores: number;
}

interface ViewState {
  rid: string;
  knobs: { [k: string]: Json };
  runs: unknown[];
  table: TableRow[];
  verdict: string;
  summary: string;
  note: string;
  error: string;
  /** How long the kernel took to rerun and pack this state (ms). */
  kernel_ms?: number;
}

/** The part of anywidget's model a view uses. */
interface AnyModel {
  get(name: string): unknown;
  set(name: string, value: unknown): void;
  save_changes(): void;
  on(event: string, callback: () => void): void;
  off(event?: string | null, callback?: (() => void) | null): void;
  /** The host's widget manager: in JupyterLab and Notebook 7 it has the kernel (its status: idle, busy, ...). */
  widget_manager?: unknown;
}

/** One move, timed in the page: release -> redraw finished (`ms`), of which the kernel's run (`kernelMs`, as the
 * kernel measured it), the round trip until the reply arrived (`replyMs`, kernel included) and the drawing. */
interface Timing {
  knob: string;
  ms: number;
  rid: string;
  kernelMs: number | null;
  replyMs: number;
  drawMs: number;
}

declare global {
  interface Window {
    ptortExplorerTimings?: Timing[];
  }
}

const HINT = 'Ctrl/\u2318 + wheel: zoom \u00b7 drag or Shift + wheel: pan \u00b7 double-click or 0: reset';

const COLOUR_CHOICES: [ColorBy, string][] = [
  ['op', 'colour by op'],
  ['pipe', 'colour by pipe'],
  ['tile', 'colour by tile']
];

let viewCount = 0;

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

class ExplorerView {
  constructor(model: AnyModel, root: HTMLElement) {
    this._model = model;
    this._id = `v${++viewCount}`;
    this.root = root;
    root.classList.add('ptort-root', 'ptort-explorer');
    root.setAttribute('data-lm-suppress-shortcuts', 'true'); // JupyterLab: keys typed here are the view's
    this._controls = el('div', 'ptort-explorer-controls');
    this._status = el('span', 'ptort-explorer-status');
    this._status.setAttribute('role', 'status');
    this._error = el('pre', 'ptort-explorer-error');
    this._verdict = el('div', 'ptort-explorer-verdict');
    this._table = el('table', 'ptort-explorer-table');
    this._summary = el('pre', 'ptort-summary ptort-explorer-summary');
    this._timeline = new TimelineView();
    const top = el('div', 'ptort-explorer-top');
    top.appendChild(this._controls);
    top.appendChild(this._status);
    root.appendChild(top);
    root.appendChild(this._error);
    root.appendChild(this._verdict);
    root.appendChild(this._table);
    root.appendChild(this._toolbar());
    root.appendChild(this._timeline.legend);
    root.appendChild(this._timeline.node);
    root.appendChild(el('div', 'ptort-hint', HINT));
    root.appendChild(this._summary);
    this._onControls = () => this._applyControls();
    this._onView = () => this._received();
    this._onKey = (e: KeyboardEvent) => this._key(e);
    // ipywidgets marks every widget's connection dead when the kernel restarts (and sends nothing after that).
    this._onCommLive = () => this._kernelGone();
    this._watch = new ReplyWatch(() => kernelStatus(model.widget_manager), {
      lost: () => this._lost(),
      gone: () => this._kernelGone(),
      slow: seconds => {
        this._status.textContent = `running\u2026 ${seconds} s`;
      }
    });
    window.addEventListener('keydown', this._onKey, true);
    model.on('change:controls', this._onControls);
    model.on('change:view', this._onView);
    model.on('comm_live_update', this._onCommLive);
    this._applyControls();
    this._draw(this._model.get('view') as ViewState | null);
    this._timeline.observeResize();
  }

  /** Keys pressed on one of the view's controls, caught on their way down from the window (a host's own handlers
   * on the document may swallow them: Notebook 7 stops arrow keys before they reach an input). A slider's keys
   * move it here; no key on a control reaches the notebook's shortcuts (cell selection, run). */
  private _key(e: KeyboardEvent): void {
    const target = e.target;
    if (!(target instanceof HTMLInputElement) || !target.dataset.knob || !this.root.contains(target)) {
      return;
    }
    e.stopPropagation();
    const entry = this._inputs.get(target.dataset.knob);
    if (!entry || entry.input !== target) {
      return; // the checkbox: its own default (Space toggles it)
    }
    const value = Number(target.value);
    const next = keyedValue(e.key, value, entry.slider.min, entry.slider.max);
    if (next === null) {
      return;
    }
    e.preventDefault();
    if (next !== value && !target.disabled) {
      target.value = String(next);
      entry.out.textContent = this._valueText(entry.slider, next);
      this._ask(entry.slider.name);
    }
  }

  dispose(): void {
    this._watch.stop();
    window.removeEventListener('keydown', this._onKey, true);
    this._model.off('change:controls', this._onControls);
    this._model.off('change:view', this._onView);
    this._model.off('comm_live_update', this._onCommLive);
    this._timeline.dispose();
  }

  // -- controls ------------------------------------------------------------------------------------------------------

  /** New controls from the kernel. The same sliders as before (the common case: a reply to a move) are updated in
   * place, so the slider the user is on keeps the keyboard focus and a drag in progress is not cut short; a
   * different set of sliders is built anew, with the focus kept on the same knob. */
  private _applyControls(): void {
    const controls = (this._model.get('controls') as Controls | null) ?? { sliders: [], equal_cores: false };
    const shape = JSON.stringify([
      controls.sliders.map(s => [s.name, s.label, s.min, s.max, s.options ?? null]),
      controls.equal_cores_label ?? null
    ]);
    if (shape !== this._shape) {
      const active = typeof document !== 'undefined' ? document.activeElement : null;
      const focused = active instanceof HTMLElement && this.root.contains(active) ? active.dataset.knob : undefined;
      this._buildControls(controls);
      this._shape = shape;
      const again = focused === 'equal_cores' ? this._equal : focused ? this._inputs.get(focused)?.input : null;
      again?.focus();
      return;
    }
    if (this._pending !== null) {
      return; // a newer request waits to be sent: its reply brings the values to show
    }
    this._updateControls(controls);
  }

  /** The same sliders with the kernel's values, limits of use and explanations (a drag in progress keeps its own). */
  private _updateControls(controls: Controls): void {
    for (const s of controls.sliders) {
      const entry = this._inputs.get(s.name);
      if (!entry) {
        continue;
      }
      entry.slider = s;
      entry.input.disabled = s.disabled || this._gone;
      entry.label.title = s.title;
      if (this._dragging !== s.name) {
        entry.input.value = String(s.value);
        entry.out.textContent = this._valueText(s, s.value);
      }
    }
    if (this._equal) {
      this._equal.checked = controls.equal_cores;
    }
  }

  private _buildControls(controls: Controls): void {
    this._controls.textContent = '';
    this._inputs = new Map();
    for (const s of controls.sliders) {
      const label = el('label', 'ptort-explorer-slider');
      label.title = s.title;
      label.appendChild(el('span', 'ptort-explorer-name', s.label));
      const input = el('input');
      input.type = 'range';
      input.min = String(s.min);
      input.max = String(s.max);
      input.step = '1';
      input.value = String(s.value);
      input.disabled = s.disabled;
      input.dataset.knob = s.name;
      const out = el('output', 'ptort-explorer-value', this._valueText(s, s.value));
      const entry = { input, out, label, slider: s };
      input.addEventListener('input', () => {
        out.textContent = this._valueText(entry.slider, Number(input.value));
      });
      input.addEventListener('pointerdown', () => {
        this._dragging = s.name;
      });
      input.addEventListener('pointerup', () => {
        this._dragging = null;
      });
      input.addEventListener('change', () => {
        this._dragging = null;
        this._ask(s.name);
      });
      label.appendChild(input);
      label.appendChild(out);
      this._controls.appendChild(label);
      this._inputs.set(s.name, entry);
    }
    if (controls.equal_cores_label) {
      const label = el('label', 'ptort-explorer-check');
      const box = el('input');
      box.type = 'checkbox';
      box.checked = controls.equal_cores;
      box.dataset.knob = 'equal_cores';
      box.addEventListener('change', () => this._ask('equal_cores'));
      label.appendChild(box);
      label.appendChild(el('span', '', controls.equal_cores_label));
      label.title = 'Give the data-parallel run exactly the cores the pipeline uses (like for like)';
      this._controls.appendChild(label);
      this._equal = box;
    } else {
      this._equal = null;
    }
  }

  private _valueText(s: Slider, position: number): string {
    if (s.options) {
      const o = s.options[Math.max(0, Math.min(s.options.length - 1, position))];
      return o ? o[0] : '';
    }
    return String(position);
  }

  private _knobValues(): { [k: string]: Json } {
    const knobs: { [k: string]: Json } = {};
    for (const [name, { input, slider }] of this._inputs) {
      const v = Number(input.value);
      knobs[name] = slider.options ? (slider.options[v]?.[1] ?? null) : v;
    }
    return knobs;
  }

  // -- requests ------------------------------------------------------------------------------------------------------

  /** A slider was released: ask for a run now, or replace the pending request if one is in flight. */
  private _ask(knob: string): void {
    if (this._gone || this._watch.kernelGone()) {
      this._kernelGone();
      return;
    }
    const rid = `${this._id}:${++this._seq}`;
    const request = { rid, knobs: this._knobValues(), equal_cores: this._equal ? this._equal.checked : null };
    this._started.set(rid, { t: now(), knob });
    this._setBusy(true);
    if (this._inFlight !== null) {
      this._pending = request;
      return;
    }
    this._send(request);
  }

  private _send(request: { rid: string; knobs: { [k: string]: Json }; equal_cores: boolean | null }): void {
    this._inFlight = request.rid;
    this._watch.start();
    this._model.set('request', request);
    this._model.save_changes();
  }

  // -- a reply that never comes ------------------------------------------------------------------------------------

  /** Stop waiting for the request in flight: send the move made meanwhile, or say that no reply came. */
  private _lost(): void {
    const next = this._pending;
    this._stopWaiting(next ? '' : LOST_MESSAGE);
    if (next) {
      this._send(next);
    } else {
      this._applyControls(); // the sliders go back to the kernel's last values, which the timelines show
    }
  }

  /** The kernel restarted (or stopped): this view can never run again. Its controls are turned off. */
  private _kernelGone(): void {
    this._gone = true;
    this.root.dataset.kernel = 'gone';
    const inputs = [...[...this._inputs.values()].map(e => e.input), ...(this._equal ? [this._equal] : [])];
    inputs.forEach(input => (input.disabled = true));
    this._stopWaiting(RESTARTED_MESSAGE);
  }

  private _stopWaiting(message: string): void {
    [this._inFlight, this._pending] = [null, null];
    this._watch.stop();
    if (message) {
      this._started.clear();
      this._setBusy(false);
      [this._error.textContent, this._error.hidden] = [message, false];
    }
  }

  /** A new view state: draw it unless it answers an older request than one still pending. */
  private _received(): void {
    const arrived = now();
    const state = this._model.get('view') as ViewState | null;
    if (!state) {
      return;
    }
    if (this._inFlight !== null && state.rid === this._inFlight) {
      this._inFlight = null;
      this._watch.stop();
      if (this._pending !== null) {
        const next = this._pending;
        this._pending = null;
        this._send(next); // the reply is stale: the sliders moved on while it ran
        return;
      }
    } else if (this._inFlight !== null) {
      return; // a reply to another view (or an update from code) while ours runs: ours will redraw
    }
    this._draw(state);
    const started = this._started.get(state.rid);
    if (started) {
      const done = now();
      const timing: Timing = {
        knob: started.knob,
        ms: done - started.t,
        rid: state.rid,
        kernelMs: typeof state.kernel_ms === 'number' ? state.kernel_ms : null,
        replyMs: arrived - started.t,
        drawMs: done - arrived
      };
      this._started.clear();
      if (typeof window !== 'undefined') {
        (window.ptortExplorerTimings = window.ptortExplorerTimings ?? []).push(timing);
      }
      this.root.dataset.lastRedrawMs = timing.ms.toFixed(1);
    }
    this._setBusy(false);
  }

  private _setBusy(busy: boolean): void {
    this.root.classList.toggle('ptort-busy', busy);
    this.root.dataset.busy = busy ? 'true' : 'false';
    this._status.textContent = busy ? 'running\u2026' : '';
  }

  // -- drawing -------------------------------------------------------------------------------------------------------

  private _draw(state: ViewState | null): void {
    if (!state) {
      return;
    }
    this.root.dataset.rid = state.rid;
    this._error.textContent = state.error;
    this._error.hidden = !state.error;
    this._verdict.textContent = state.verdict;
    this._verdict.hidden = !state.verdict;
    this._summary.textContent = state.note ? `${state.summary}\n(${state.note})` : state.summary;
    this._fillTable(state.table);
    if (state.error && !state.runs.length) {
      return; // keep the last good timelines
    }
    const runs: RunView[] = [];
    for (const run of state.runs) {
      try {
        runs.push({ label: String((run as { label?: unknown }).label ?? 'run'), model: modelFromCompact(run) });
      } catch (e) {
        this._error.textContent = `timeline not shown: ${e instanceof Error ? e.message : e}`;
        this._error.hidden = false;
      }
    }
    this._timeline.setRuns(runs);
    this._timeline.drawNow();
  }

  private _fillTable(rows: TableRow[]): void {
    const t = this._table;
    t.textContent = '';
    if (!rows.length) {
      t.hidden = true;
      return;
    }
    t.hidden = false;
    const head = el('tr');
    for (const h of ['run', 'cores', 'cycles', '\u00b5s', 'overlap %', 'tasks']) {
      head.appendChild(el('th', '', h));
    }
    t.appendChild(head);
    for (const r of rows) {
      const tr = el('tr');
      tr.dataset.run = r.run;
      const cells = [r.run, String(r.cores), fmt(r.cycles), fmt(r.us, 3), fmt(r.overlap_pct, 1), String(r.tasks)];
      for (const c of cells) {
        tr.appendChild(el('td', '', c));
      }
      t.appendChild(tr);
    }
  }

  private _toolbar(): HTMLDivElement {
    const bar = el('div', 'ptort-toolbar');
    const colour = el('select', 'ptort-select ptort-colour-by');
    colour.title = 'Colour slices by op, by pipe or by tile';
    for (const [value, text] of COLOUR_CHOICES) {
      const o = el('option', '', text);
      o.value = value;
      colour.appendChild(o);
    }
    colour.addEventListener('change', () => this._timeline.setColorBy(colour.value as ColorBy));
    bar.appendChild(colour);
    bar.appendChild(el('span', 'ptort-spacer'));
    bar.appendChild(
      buttonGroup(
        button('\u2212', 'Zoom out (-)', () => this._timeline.zoom(1 / ZOOM_STEP)),
        button('+', 'Zoom in (+)', () => this._timeline.zoom(ZOOM_STEP)),
        button('Reset', 'Show the whole run (0, or double-click)', () => this._timeline.reset())
      )
    );
    return bar;
  }

  readonly root: HTMLElement;
  private _model: AnyModel;
  private _id: string;
  private _seq = 0;
  private _inFlight: string | null = null;
  /** The kernel restarted: the model's connection is gone, nothing sent arrives. */
  private _gone = false;
  private _pending: { rid: string; knobs: { [k: string]: Json }; equal_cores: boolean | null } | null = null;
  private _started = new Map<string, { t: number; knob: string }>();
  private _inputs = new Map<
    string,
    { input: HTMLInputElement; out: HTMLOutputElement; label: HTMLLabelElement; slider: Slider }
  >();
  private _shape: string | null = null;
  private _dragging: string | null = null;
  private _equal: HTMLInputElement | null = null;
  private _controls: HTMLDivElement;
  private _status: HTMLSpanElement;
  private _error: HTMLPreElement;
  private _verdict: HTMLDivElement;
  private _table: HTMLTableElement;
  private _summary: HTMLPreElement;
  private _timeline: TimelineView;
  private _onControls: () => void;
  private _onView: () => void;
  private _onKey: (e: KeyboardEvent) => void;
  private _onCommLive: () => void;
  private _watch: ReplyWatch;
}

/** anywidget's entry point: one ExplorerView per displayed output; the returned function cleans up. */
function render({ model, el: root }: { model: AnyModel; el: HTMLElement }): () => void {
  const view = new ExplorerView(model, root);
  return () => view.dispose();
}

export default { render };
