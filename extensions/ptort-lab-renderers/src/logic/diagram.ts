/**
 * The pipeline diagram payload (application/vnd.ptort.pipeline+json, from ptort_lab.viz.pipeline_json) and the
 * rules that make Graphviz's SVG safe to insert inline. Framework-free.
 *
 * Safety. The DOT text comes from a notebook output, which may be untrusted, and the renderer is declared
 * `safe: true`. Graphviz lays it out inside WebAssembly; its SVG is then filtered through an allowlist of
 * elements and attributes: no scripts, no foreignObject, no event handlers, no external references (href, URL,
 * image and stylesheet attributes), no url(...) in styles. Text is kept as text.
 */

export interface PipelineNode {
  id: string;
  name: string;
  kind: string;
  label: string[];
  kernels: string[];
}

export interface PipelineEdge {
  source: string;
  target: string;
  kind: string;
  label: string;
  name: string;
  depth: number | null;
}

export interface PipelineDiagram {
  version: number | null;
  kind: string;
  name: string;
  title: string;
  dot: string;
  nodes: PipelineNode[];
  edges: PipelineEdge[];
}

/** Largest DOT text laid out in the browser; bigger graphs are shown as text. */
export const MAX_DOT_CHARS = 500000;

function s(v: unknown): string {
  return typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(s) : [];
}

/** Read the payload; throws an Error with a short message when it has no usable DOT. */
export function parsePipeline(data: unknown): PipelineDiagram {
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw new Error('pipeline data is not an object');
  }
  const d = data as { [k: string]: unknown };
  const dot = s(d.dot);
  if (!dot.trim()) {
    throw new Error('pipeline data has no DOT source');
  }
  const nodes = (Array.isArray(d.nodes) ? d.nodes : []).map(n => {
    const o = (n && typeof n === 'object' ? n : {}) as { [k: string]: unknown };
    return { id: s(o.id), name: s(o.name), kind: s(o.kind), label: strings(o.label), kernels: strings(o.kernels) };
  });
  const edges = (Array.isArray(d.edges) ? d.edges : []).map(e => {
    const o = (e && typeof e === 'object' ? e : {}) as { [k: string]: unknown };
    return {
      source: s(o.source),
      target: s(o.target),
      kind: s(o.kind),
      label: s(o.label),
      name: s(o.name),
      depth: typeof o.depth === 'number' ? o.depth : null
    };
  });
  return {
    version: typeof d.version === 'number' ? d.version : null,
    kind: s(d.kind),
    name: s(d.name),
    title: s(d.title),
    dot,
    nodes,
    edges
  };
}

/** Lines describing a node (shown when it is clicked): name, kind, kernels, its channels in and out. */
export function nodeInfo(p: PipelineDiagram, id: string): string[] {
  const n = p.nodes.find(x => x.id === id);
  if (!n) {
    return [];
  }
  const lines = [`${n.name || n.id} (${n.kind || 'node'})`];
  if (n.kernels.length) {
    lines.push(`kernels: ${n.kernels.join(', ')}`);
  }
  const name = (nid: string): string => {
    const m = p.nodes.find(x => x.id === nid);
    return m ? m.name || m.id : nid;
  };
  for (const e of p.edges.filter(x => x.target === id)) {
    lines.push(
      `in:  ${e.name || e.label || e.kind} from ${name(e.source)}${e.depth !== null ? ` (depth ${e.depth})` : ''}`
    );
  }
  for (const e of p.edges.filter(x => x.source === id)) {
    lines.push(
      `out: ${e.name || e.label || e.kind} to ${name(e.target)}${e.depth !== null ? ` (depth ${e.depth})` : ''}`
    );
  }
  return lines;
}

/** One-line description: "pipeline: loader -> computer -> storer (2 channels)". */
export function describePipeline(p: PipelineDiagram): string {
  const head = p.title || p.name || p.kind || 'diagram';
  const procs = p.nodes.filter(n => n.kind === 'process').map(n => n.name || n.id);
  const body = procs.length ? `: ${procs.join(' \u2192 ')}` : `: ${p.nodes.length} nodes`;
  const chans = p.edges.filter(e => e.kind === 'channel').length;
  return `${head}${body}${chans ? ` (${chans} channel${chans === 1 ? '' : 's'})` : ''}`;
}

// -- SVG allowlist --------------------------------------------------------------------------------------------------

// prettier-ignore
const ALLOWED_TAGS = new Set([
  'svg', 'g', 'title', 'desc', 'defs', 'path', 'polygon', 'polyline', 'line', 'rect', 'circle', 'ellipse',
  'text', 'tspan', 'lineargradient', 'radialgradient', 'stop', 'clippath', 'marker'
]);

// prettier-ignore
const ALLOWED_ATTRS = new Set([
  'id', 'class', 'width', 'height', 'viewbox', 'preserveaspectratio', 'transform', 'x', 'y', 'x1', 'y1', 'x2',
  'y2', 'cx', 'cy', 'r', 'rx', 'ry', 'd', 'points', 'fill', 'fill-opacity', 'stroke', 'stroke-width',
  'stroke-opacity', 'stroke-dasharray', 'stroke-linecap', 'stroke-linejoin', 'opacity', 'font-family',
  'font-size', 'font-weight', 'font-style', 'text-anchor', 'dominant-baseline', 'offset', 'stop-color',
  'stop-opacity', 'gradientunits', 'gradienttransform', 'clip-path', 'version', 'xmlns', 'xmlns:xlink',
  'text-decoration', 'baseline-shift', 'letter-spacing'
]);

/** Whether an SVG element of this tag name may stay (case-insensitive; namespace prefixes rejected). */
export function isAllowedTag(tag: string): boolean {
  return ALLOWED_TAGS.has(tag.toLowerCase());
}

/**
 * Whether an attribute may stay on an allowed element: allowlisted names only, and no value that references
 * anything outside the document (url(...) other than a local "#id", javascript:, data:, expression()).
 */
export function isAllowedAttr(name: string, value: string): boolean {
  const n = name.toLowerCase();
  if (!ALLOWED_ATTRS.has(n)) {
    return false;
  }
  const v = value.toLowerCase().replace(/\s+/g, '');
  if (/javascript:|vbscript:|data:|expression\(|@import|behavior:|-moz-binding/.test(v)) {
    return false;
  }
  // url() only to a fragment in this document (gradients, clip paths).
  const urls = v.match(/url\(([^)]*)\)/g) || [];
  return urls.every(u => /^url\(['"]?#[a-z0-9_.:-]*['"]?\)$/.test(u));
}

/** The smallest DOM surface `sanitizeSvg` needs (a real Element satisfies it; tests use a fake). */
export interface ElementLike {
  tagName: string;
  readonly attributes: ArrayLike<{ name: string; value: string }>;
  readonly children: ArrayLike<ElementLike>;
  removeAttribute(name: string): void;
  remove(): void;
}

/** Remove, in place, every element and attribute outside the allowlist. Returns how many were removed. */
export function sanitizeSvg(root: ElementLike): number {
  let removed = 0;
  const walk = (el: ElementLike): void => {
    const attrs = Array.from(el.attributes).map(a => ({ name: a.name, value: a.value }));
    for (const a of attrs) {
      if (!isAllowedAttr(a.name, a.value)) {
        el.removeAttribute(a.name);
        removed++;
      }
    }
    for (const child of Array.from(el.children)) {
      // Graphviz wraps linked nodes in <a xlink:href=...>: drop the link, keep the drawing.
      if (!isAllowedTag(child.tagName) && child.tagName.toLowerCase() !== 'a') {
        child.remove();
        removed++;
      } else {
        walk(child);
      }
    }
  };
  walk(root);
  return removed;
}

/** The node id Graphviz writes as the <title> of a node group (it escapes nothing we need back). */
export function nodeIdFromTitle(title: string): string {
  return title.trim();
}
