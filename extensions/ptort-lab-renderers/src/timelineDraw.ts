/**
 * The timeline's SVG, drawn from scratch for one frame: row bands and labels, the time axis, each run's kernel
 * launch, the slices and channel rows, and the makespans. Also where the runs' rows are stacked. No state and no
 * events: TimelineView (timelineView.ts) keeps those and calls `placeRuns` and `drawFrame`.
 */

import type { TimelineModel } from './logic/trace';
import { RowBox, counterPath, layoutRows, visibleRects } from './logic/layout';
import { ColorBy, PALETTE, sliceColor } from './logic/colors';
import { View, niceStep, span, ticks, xOf } from './logic/scale';
import { TICK_CHAR_PX, fitLabel, launchLabelIn, runSummary, sliceLabel, tickLabel } from './logic/format';
import { svgEl } from './dom';

/** Width of the label pane left of the plot, and height of the axis above it (pixels). */
export const LABEL_W = 170;
export const AXIS_H = 22;
const SECTION_H = 20;
const SECTION_GAP = 6;
/** Minimum tick spacing on the axis, in pixels. */
const TICK_PX = 90;
/** A slice label is drawn only in slices at least this wide, in pixels. */
const MIN_LABELLED_PX = 34;
/** Text sits this far above the bottom of its row (pixels). */
const TEXT_INSET = 5;

/** A row of the layout, with the index of the run it belongs to. */
export interface PlacedRow extends RowBox {
  run: number;
}

/** The rows of one run: [top, bottom) and the baseline of its first core header (for the launch label). */
export interface Section {
  top: number;
  bottom: number;
  headerY: number | null;
}

export interface Placement {
  rows: PlacedRow[];
  height: number;
  sections: Section[];
}

/** Stack the runs' rows, each run under a summary header when there are several; collapsed cores fold. */
export function placeRuns(
  models: { label: string; model: TimelineModel }[],
  collapsed: (run: number, pid: number) => boolean
): Placement {
  const rows: PlacedRow[] = [];
  const sections: Section[] = [];
  let y = 0;
  const many = models.length > 1;
  models.forEach((run, i) => {
    const top = y;
    if (many) {
      rows.push({ kind: 'section', y, h: SECTION_H, label: runSummary(run.label, run.model), run: i });
      y += SECTION_H;
    }
    const folded = new Set(run.model.groups.filter(g => collapsed(i, g.pid)).map(g => g.pid));
    const lay = layoutRows(run.model, folded, y);
    rows.push(...lay.rows.map(r => ({ ...r, run: i })));
    const header = lay.rows.find(r => r.kind === 'group');
    y += lay.height + (many ? SECTION_GAP : 0);
    sections.push({ top, bottom: y, headerY: header ? header.y + header.h - TEXT_INSET : null });
  });
  return { rows, height: y, sections };
}

/** Everything one frame needs. */
export interface Frame {
  view: View;
  /** Plot width in pixels (without the label pane). */
  width: number;
  height: number;
  placement: Placement;
  models: TimelineModel[];
  colorBy: ColorBy;
  collapsed: (run: number, pid: number) => boolean;
}

/** Draw a frame into `svg` (emptied first), back to front; returns the (hidden) hover outline. */
export function drawFrame(svg: SVGSVGElement, f: Frame): SVGRectElement {
  svg.textContent = '';
  svg.setAttribute('width', String(LABEL_W + f.width));
  svg.setAttribute('height', String(f.height));
  const labels = svgEl('g', { class: 'ptort-labels' });
  const plot = svgEl('svg', {
    class: 'ptort-plot',
    x: LABEL_W,
    y: 0,
    width: f.width,
    height: f.height,
    overflow: 'hidden'
  });
  svg.appendChild(plot);
  svg.appendChild(labels);
  drawBands(plot, labels, f);
  drawAxis(plot, labels, f);
  drawLaunches(plot, f);
  drawRows(plot, f);
  drawMakespans(plot, f);
  const hover = svgEl('rect', { class: 'ptort-hover', x: 0, y: 0, width: 0, height: 0, visibility: 'hidden' });
  plot.appendChild(hover);
  return hover;
}

/** Section and core header bands across both panes, and every row's label. */
function drawBands(plot: SVGElement, labels: SVGElement, f: Frame): void {
  for (const rb of f.placement.rows) {
    const y = AXIS_H + rb.y;
    if (rb.kind !== 'section' && rb.kind !== 'group') {
      const stall = rb.kind === 'stall';
      const text = fitLabel(rb.label, LABEL_W - 18, stall ? 5.5 : 6.5);
      const attrs = { class: `ptort-label ptort-label-${rb.kind}`, x: 14, y: y + rb.h - (stall ? 2 : TEXT_INSET) };
      labels.appendChild(svgEl('text', attrs, text));
      continue;
    }
    const band = `ptort-band ptort-band-${rb.kind}`;
    plot.appendChild(svgEl('rect', { class: band, x: 0, y, width: f.width, height: rb.h }));
    labels.appendChild(svgEl('rect', { class: band, x: 0, y, width: LABEL_W, height: rb.h }));
    const group = rb.kind === 'group' ? rb.group : undefined;
    const mark = group ? (f.collapsed(rb.run, group.pid) ? '\u25b8 ' : '\u25be ') : '';
    const room = rb.kind === 'section' ? LABEL_W + f.width : LABEL_W - 6;
    const attrs = { class: `ptort-label ptort-label-${rb.kind}`, x: 4, y: y + rb.h - TEXT_INSET };
    labels.appendChild(svgEl('text', attrs, fitLabel(mark + rb.label, room)));
  }
}

/** Tick labels and grid lines; the unit at the left. */
function drawAxis(plot: SVGElement, labels: SVGElement, f: Frame): void {
  const tks = ticks(f.view, f.width, TICK_PX);
  const step = tks.length > 1 ? tks[1] - tks[0] : niceStep(span(f.view), 1);
  const unit = f.models.length ? f.models[0].unit : 'cycles';
  const axis = svgEl('g', { class: 'ptort-axis' });
  for (const t of tks) {
    const x = xOf(t, f.view, f.width);
    axis.appendChild(svgEl('line', { class: 'ptort-grid', x1: x, x2: x, y1: AXIS_H - 4, y2: f.height }));
    const text = tickLabel(t, unit, step);
    // A label that would run past the right edge (and be clipped: "100" of "100k") ends at its tick instead.
    const past = x + 3 + text.length * TICK_CHAR_PX > f.width;
    const attrs: { [name: string]: string | number } = past ? { x: x - 3, 'text-anchor': 'end' } : { x: x + 3 };
    axis.appendChild(svgEl('text', { class: 'ptort-tick', y: AXIS_H - 8, ...attrs }, text));
  }
  plot.appendChild(axis);
  const unitText = unit === 'cycles' ? 'cycles' : 'time';
  labels.appendChild(svgEl('text', { class: 'ptort-axis-unit', x: 4, y: AXIS_H - 8 }, unitText));
}

/** Each run's kernel launch: a pale band over its rows, edged at its end, labelled in its first core header. */
function drawLaunches(plot: SVGElement, f: Frame): void {
  f.placement.sections.forEach((sec, i) => {
    const launch = f.models[i].launch;
    if (!launch || launch.end <= f.view.start || launch.start >= f.view.end) {
      return;
    }
    const x0 = Math.max(xOf(launch.start, f.view, f.width), 0);
    const x1 = Math.min(xOf(launch.end, f.view, f.width), f.width);
    const [y1, y2] = [AXIS_H + sec.top, AXIS_H + sec.bottom];
    const g = svgEl('g', { class: 'ptort-launch' });
    const colour = PALETTE.launch;
    g.appendChild(
      svgEl('rect', { class: 'ptort-launch-band', x: x0, y: y1, width: x1 - x0, height: y2 - y1, fill: colour })
    );
    g.appendChild(svgEl('line', { class: 'ptort-launch-edge', x1, x2: x1, y1, y2, stroke: colour }));
    const text = launchLabelIn(launch, x1 - x0);
    if (text && sec.headerY !== null) {
      g.appendChild(svgEl('text', { class: 'ptort-launch-label', x: (x0 + x1) / 2, y: AXIS_H + sec.headerY }, text));
    }
    plot.appendChild(g);
  });
}

/** Slices of the lane and stall rows, and the channel rows. */
function drawRows(plot: SVGElement, f: Frame): void {
  const content = svgEl('g', { class: 'ptort-content' });
  for (const rb of f.placement.rows) {
    const y = AXIS_H + rb.y;
    if ((rb.kind === 'lane' || rb.kind === 'stall') && rb.row) {
      drawSlices(content, rb, y, f);
    } else if (rb.kind === 'counter' && rb.counter) {
      const g = svgEl('g', { class: 'ptort-counter', transform: `translate(0,${y})` });
      const cap = { class: 'ptort-counter-cap', x1: 0, x2: f.width, y1: 2, y2: 2, stroke: PALETTE.channel_depth };
      g.appendChild(svgEl('line', cap));
      g.appendChild(svgEl('line', { class: 'ptort-counter-base', x1: 0, x2: f.width, y1: rb.h, y2: rb.h }));
      const d = counterPath(rb.counter, f.view, f.width, rb.h);
      if (d) {
        g.appendChild(
          svgEl('path', { class: 'ptort-counter-fill', d, fill: PALETTE.channel, stroke: PALETTE.channel })
        );
      }
      content.appendChild(g);
    }
  }
  plot.appendChild(content);
}

/** One row's visible slices (narrow neighbours merged into grey clusters), labelled where they are wide. */
function drawSlices(content: SVGElement, rb: PlacedRow, y: number, f: Frame): void {
  for (const r of visibleRects(rb.row!, f.view, f.width, 1)) {
    const s = r.slice;
    const cls =
      s === null ? 'ptort-slice ptort-cluster' : s.kind === 'stall' ? 'ptort-slice ptort-stall' : 'ptort-slice';
    const fill = s === null ? PALETTE.cluster : sliceColor(s, f.colorBy);
    content.appendChild(svgEl('rect', { class: cls, x: r.x.toFixed(2), y, width: r.w.toFixed(2), height: rb.h, fill }));
    if (s === null || s.kind !== 'span' || r.w <= MIN_LABELLED_PX) {
      continue;
    }
    const label = fitLabel(sliceLabel(s), Math.min(r.w, f.width - Math.max(r.x, 0)));
    if (label) {
      const at = { class: 'ptort-slice-label', x: Math.max(r.x, 0) + 3, y: y + rb.h - TEXT_INSET };
      content.appendChild(svgEl('text', at, label));
    }
  }
}

/** The makespan of each run, a dashed line over that run's rows. */
function drawMakespans(plot: SVGElement, f: Frame): void {
  f.placement.sections.forEach((sec, i) => {
    const m = f.models[i];
    const end = m.makespan ?? m.end;
    if (end < f.view.start || end > f.view.end) {
      return;
    }
    const x = xOf(end, f.view, f.width);
    const [y1, y2] = [AXIS_H + sec.top, AXIS_H + sec.bottom];
    const attrs = { class: 'ptort-makespan', x1: x, x2: x, y1, y2, stroke: PALETTE.makespan };
    plot.appendChild(svgEl('line', attrs));
  });
}
