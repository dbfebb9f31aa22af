/**
 * ptort-lab-renderers: JupyterLab mime renderers for ptort_lab outputs.
 *
 * Ranks are below JupyterLab's text/html (50), SVG (80) and PNG (90) renderers, so these win when a %%ptort
 * output carries both our JSON and the stock fallbacks; without this extension the fallbacks show as before.
 * Both renderers are `safe`: they treat their data as untrusted (text only via textContent; Graphviz SVG through
 * an allowlist), so they render in untrusted notebooks too.
 */

import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { PIPELINE_MIME, TRACE_MIME } from './logic/mime';
import { PipelineRenderer, TraceRenderer } from './renderers';

export const TRACE_RANK = 40;
export const PIPELINE_RANK = 45;

const traceExtension: IRenderMime.IExtension = {
  id: 'ptort-lab-renderers:trace',
  description: 'Interactive timeline for application/vnd.ptort.trace+json',
  rendererFactory: {
    safe: true,
    mimeTypes: [TRACE_MIME],
    defaultRank: TRACE_RANK,
    createRenderer: options => new TraceRenderer(options)
  },
  rank: TRACE_RANK,
  dataType: 'json'
};

const pipelineExtension: IRenderMime.IExtension = {
  id: 'ptort-lab-renderers:pipeline',
  description: 'Client-side Graphviz drawing of application/vnd.ptort.pipeline+json',
  rendererFactory: {
    safe: true,
    mimeTypes: [PIPELINE_MIME],
    defaultRank: PIPELINE_RANK,
    createRenderer: options => new PipelineRenderer(options)
  },
  rank: PIPELINE_RANK,
  dataType: 'json'
};

const extensions: IRenderMime.IExtension[] = [traceExtension, pipelineExtension];

export default extensions;
