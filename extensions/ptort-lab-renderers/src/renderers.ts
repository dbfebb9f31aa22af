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

import { ChromeTrace, Json, RunEntry, buildModel, listRuns } from './logic/trace';
import { parsePipeline } from './logic/diagram';
import { runSummary, traceFileName } from './logic/format';
import { ColorBy } from './logic/layout';
import { DiagramView } from './diagramView';
import { RunView, TimelineView } from './timelineView';
import { button, downloadText, el } from './dom';

export const TRACE_MIME = 'application/vnd.ptort.trace+json';
export const PIPELINE_MIME = 'application/vnd.ptort.pipeline+json';

const HINT = 'wheel: zoom \u00b7 drag: pan \u00b7 double-click or 0: reset \u00b7 click a core to fold it';

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

    let diagramDone: Promise<void> = Promise.resolve();
    const pipelineData = model.data[PIPELINE_MIME];
    if (pipelineData !== undefined) {
      try {
        const view = new DiagramView(parsePipeline(pipelineData));
        this._diagram = view;
        node.appendChild(view.node);
        diagramDone = view.render();
      } catch (e) {
        node.appendChild(el('div', 'ptort-note', `diagram not shown: ${e instanceof Error ? e.message : e}`));
      }
    }

    const runs = listRuns(data);
    const knobs =
      data && typeof data === 'object' && 'knobs' in (data as object)
        ? ((data as { knobs: unknown }).knobs as { [k: string]: Json })
        : null;
    this._runs = runs
      .filter(r => r.trace !== null)
      .map(r => ({ entry: r, view: { label: r.label, model: buildModel(r.trace as ChromeTrace) } }));
    this._knobs = knobs;

    const notes = el('div', 'ptort-notes');
    for (const r of runs.filter(x => x.note !== null)) {
      notes.appendChild(el('div', 'ptort-note', `${r.label}: ${r.note}`));
    }
    for (const r of this._runs) {
      for (const w of r.view.model.warnings) {
        notes.appendChild(el('div', 'ptort-note', `${r.entry.label}: ${w}`));
      }
    }
    if (!this._runs.length) {
      notes.appendChild(el('div', 'ptort-note', 'no trace to draw'));
      node.appendChild(notes);
      await diagramDone;
      return;
    }

    // Toolbar: run toggle, colouring, zoom, download.
    const bar = el('div', 'ptort-toolbar');
    this._modeButtons = [];
    if (this._runs.length > 1) {
      const group = el('span', 'ptort-toggle');
      group.setAttribute('role', 'group');
      group.setAttribute('aria-label', 'Run shown');
      const modes = [...this._runs.map(r => r.entry.label), 'both'];
      for (const m of modes) {
        const b = button(m, m === 'both' ? 'Both runs on one time axis' : `Show the ${m} run`, () =>
          this._setMode(m)
        );
        b.dataset.mode = m;
        group.appendChild(b);
        this._modeButtons.push(b);
      }
      bar.appendChild(group);
    }
    const colour = el('select', 'ptort-select');
    colour.title = 'Colour slices by op or by tile';
    for (const [value, text] of [
      ['op', 'colour by op'],
      ['tile', 'colour by tile']
    ]) {
      const o = el('option', '', text);
      o.value = value;
      colour.appendChild(o);
    }
    colour.addEventListener('change', () => this._timeline && this._timeline.setColorBy(colour.value as ColorBy));
    bar.appendChild(colour);
    bar.appendChild(el('span', 'ptort-spacer'));
    bar.appendChild(button('\u2212', 'Zoom out (-)', () => this._timeline && this._timeline.zoom(1 / 0.7)));
    bar.appendChild(button('+', 'Zoom in (+)', () => this._timeline && this._timeline.zoom(0.7)));
    bar.appendChild(button('Reset', 'Show the whole run (0, or double-click)', () => this._timeline && this._timeline.reset()));
    this._downloads = el('span', 'ptort-downloads');
    bar.appendChild(this._downloads);
    node.appendChild(bar);

    this._header = el('div', 'ptort-run-header');
    node.appendChild(this._header);
    this._timeline = new TimelineView();
    node.appendChild(this._timeline.node);
    node.appendChild(el('div', 'ptort-hint', HINT));
    if (notes.childNodes.length) {
      node.appendChild(notes);
    }
    this._setMode(this._runs[0].entry.label);
    this._timeline.observeResize();
    await diagramDone;
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
      const view = new DiagramView(parsePipeline(model.data[this._mimeType]), multiLine ? undefined : text || undefined);
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
