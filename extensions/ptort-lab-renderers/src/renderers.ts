/**
 * The two mime renderers (Lumino widgets).
 *
 * TraceRenderer (application/vnd.ptort.trace+json). It wins over the text/html, SVG and PNG parts of the same
 * output (rank 40 < html 50 < svg 80 < png 90), so it also shows what those parts carried: the text/plain summary
 * and, when the bundle has application/vnd.ptort.pipeline+json, the pipeline diagram above the timeline.
 *
 * PipelineRenderer (application/vnd.ptort.pipeline+json), for outputs without a trace (a Diagram on its own).
 */

import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { ChromeTrace, Json, RunEntry, buildModel, listRuns, traceKnobs } from './logic/trace';
import { parsePipeline } from './logic/diagram';
import { runSummary, traceFileName } from './logic/format';
import { ColorBy } from './logic/colors';
import { PIPELINE_MIME } from './logic/mime';
import { ZOOM_STEP } from './logic/scale';
import { DiagramView } from './diagramView';
import { RunView, TimelineView } from './timelineView';
import { button, buttonGroup, downloadText, el } from './dom';

const HINT =
  'Ctrl/\u2318 + wheel: zoom \u00b7 drag or Shift + wheel: pan \u00b7 double-click or 0: reset \u00b7 ' +
  'click a core to fold it';

const COLOUR_CHOICES: [ColorBy, string][] = [
  ['op', 'colour by op'],
  ['pipe', 'colour by pipe'],
  ['tile', 'colour by tile']
];

function plainText(model: IRenderMime.IMimeModel): string {
  const t = model.data['text/plain'];
  if (typeof t === 'string') {
    return t;
  }
  return Array.isArray(t) ? t.join('') : '';
}

export class TraceRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._mimeType = options.mimeType;
    this.addClass('mimerenderer-ptort-trace');
    this.addClass('ptort-root');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this._cleanup();
    const node = this.node;
    node.textContent = '';
    const data = model.data[this._mimeType] as unknown;
    const summary = plainText(model);
    if (summary) {
      node.appendChild(el('pre', 'ptort-summary', summary));
    }
    const diagramDone = this._renderDiagram(model.data[PIPELINE_MIME]);

    const runs = listRuns(data);
    this._runs = runs
      .filter(r => r.trace !== null)
      .map(r => ({ entry: r, view: { label: r.label, model: buildModel(r.trace as ChromeTrace) } }));
    this._knobs = traceKnobs(data);
    const notes = this._notes(runs);
    if (!this._runs.length) {
      notes.appendChild(el('div', 'ptort-note', 'no trace to draw'));
      node.appendChild(notes);
      await diagramDone;
      return;
    }

    this._timeline = new TimelineView();
    node.appendChild(this._toolbar());
    this._header = el('div', 'ptort-run-header');
    node.appendChild(this._header);
    node.appendChild(this._timeline.legend);
    node.appendChild(this._timeline.node);
    node.appendChild(el('div', 'ptort-hint', HINT));
    if (notes.childNodes.length) {
      node.appendChild(notes);
    }
    this._setMode(this._runs[0].entry.label);
    this._timeline.observeResize();
    await diagramDone;
  }

  /** The pipeline diagram above the timeline, when the output carries one; resolves once it is laid out. */
  private _renderDiagram(pipelineData: unknown): Promise<void> {
    if (pipelineData === undefined) {
      return Promise.resolve();
    }
    try {
      const view = new DiagramView(parsePipeline(pipelineData));
      this._diagram = view;
      this.node.appendChild(view.node);
      return view.render();
    } catch (e) {
      this.node.appendChild(el('div', 'ptort-note', `diagram not shown: ${e instanceof Error ? e.message : e}`));
      return Promise.resolve();
    }
  }

  /** Notes on runs that cannot be drawn and on what reading the traces found odd. */
  private _notes(runs: RunEntry[]): HTMLDivElement {
    const notes = el('div', 'ptort-notes');
    for (const r of runs.filter(x => x.note !== null)) {
      notes.appendChild(el('div', 'ptort-note', `${r.label}: ${r.note}`));
    }
    for (const r of this._runs) {
      for (const w of r.view.model.warnings) {
        notes.appendChild(el('div', 'ptort-note', `${r.entry.label}: ${w}`));
      }
    }
    return notes;
  }

  /** The toolbar: run toggle (when there are several runs), colouring, zoom buttons, downloads. */
  private _toolbar(): HTMLDivElement {
    const bar = el('div', 'ptort-toolbar');
    this._modeButtons = [];
    if (this._runs.length > 1) {
      bar.appendChild(this._runToggle());
    }
    bar.appendChild(this._colourSelect());
    bar.appendChild(el('span', 'ptort-spacer'));
    const timeline = (): TimelineView | null => this._timeline;
    bar.appendChild(
      buttonGroup(
        button('\u2212', 'Zoom out (-)', () => timeline()?.zoom(1 / ZOOM_STEP)),
        button('+', 'Zoom in (+)', () => timeline()?.zoom(ZOOM_STEP)),
        button('Reset', 'Show the whole run (0, or double-click)', () => timeline()?.reset())
      )
    );
    this._downloads = el('span', 'ptort-downloads');
    bar.appendChild(this._downloads);
    return bar;
  }

  /** One button per run, and "both" (every run on one time axis). */
  private _runToggle(): HTMLSpanElement {
    const group = el('span', 'ptort-toggle');
    group.setAttribute('role', 'group');
    group.setAttribute('aria-label', 'Run shown');
    for (const m of [...this._runs.map(r => r.entry.label), 'both']) {
      const title = m === 'both' ? 'Both runs on one time axis' : `Show the ${m} run`;
      const b = button(m, title, () => this._setMode(m));
      b.dataset.mode = m;
      group.appendChild(b);
      this._modeButtons.push(b);
    }
    return group;
  }

  private _colourSelect(): HTMLSelectElement {
    const colour = el('select', 'ptort-select ptort-colour-by');
    colour.title = 'Colour slices by op, by pipe or by tile';
    for (const [value, text] of COLOUR_CHOICES) {
      const o = el('option', '', text);
      o.value = value;
      colour.appendChild(o);
    }
    colour.addEventListener('change', () => this._timeline?.setColorBy(colour.value as ColorBy));
    return colour;
  }

  dispose(): void {
    this._cleanup();
    super.dispose();
  }

  private _cleanup(): void {
    if (this._timeline) {
      this._timeline.dispose();
      this._timeline = null;
    }
    if (this._diagram) {
      this._diagram.dispose();
      this._diagram = null;
    }
  }

  private _setMode(mode: string): void {
    const shown = mode === 'both' ? this._runs : this._runs.filter(r => r.entry.label === mode);
    for (const b of this._modeButtons) {
      const on = b.dataset.mode === mode;
      b.classList.toggle('ptort-active', on);
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
    }
    this.node.dataset.run = mode;
    if (this._header) {
      this._header.textContent = shown.length === 1 ? runSummary(shown[0].entry.label, shown[0].view.model) : '';
      this._header.hidden = shown.length !== 1;
    }
    if (this._downloads) {
      this._downloads.textContent = '';
      for (const r of shown) {
        const label = shown.length > 1 ? `Download ${r.entry.label} trace` : 'Download Chrome trace';
        const b = button(label, 'Chrome Trace Event JSON: open it in ui.perfetto.dev or chrome://tracing', () =>
          this._download(r.entry)
        );
        b.classList.add('ptort-download');
        this._downloads.appendChild(b);
      }
    }
    if (this._timeline) {
      this._timeline.setRuns(shown.map(r => r.view));
    }
  }

  private _download(entry: RunEntry): void {
    if (entry.trace) {
      downloadText(JSON.stringify(entry.trace), traceFileName(entry.label, this._knobs));
    }
  }

  private _mimeType: string;
  private _runs: { entry: RunEntry; view: RunView }[] = [];
  private _knobs: { [k: string]: Json } | null = null;
  private _modeButtons: HTMLButtonElement[] = [];
  private _header: HTMLDivElement | null = null;
  private _downloads: HTMLSpanElement | null = null;
  private _timeline: TimelineView | null = null;
  private _diagram: DiagramView | null = null;
}

export class PipelineRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._mimeType = options.mimeType;
    this.addClass('mimerenderer-ptort-pipeline');
    this.addClass('ptort-root');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    if (this._diagram) {
      this._diagram.dispose();
      this._diagram = null;
    }
    this.node.textContent = '';
    const text = plainText(model).trim();
    const multiLine = text.includes('\n');
    if (multiLine) {
      this.node.appendChild(el('pre', 'ptort-summary', text));
    }
    try {
      const view = new DiagramView(
        parsePipeline(model.data[this._mimeType]),
        multiLine ? undefined : text || undefined
      );
      this._diagram = view;
      this.node.appendChild(view.node);
      await view.render();
    } catch (e) {
      this.node.appendChild(el('div', 'ptort-note', `diagram not shown: ${e instanceof Error ? e.message : e}`));
      if (text && !multiLine) {
        this.node.appendChild(el('pre', 'ptort-summary', text));
      }
    }
  }

  dispose(): void {
    if (this._diagram) {
      this._diagram.dispose();
      this._diagram = null;
    }
    super.dispose();
  }

  private _mimeType: string;
  private _diagram: DiagramView | null = null;
}
