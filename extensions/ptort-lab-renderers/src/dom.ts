/**
 * Small DOM helpers. Every user-visible string goes in through textContent or setAttribute, never innerHTML.
 */

import type { LegendEntry } from './logic/colors';

const SVG_NS = 'http://www.w3.org/2000/svg';

/** How long a download's Blob URL lives: the browser has started reading it well before then. */
export const REVOKE_DELAY_MS = 10000;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export function svgEl<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs?: { [name: string]: string | number },
  text?: string
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag) as SVGElementTagNameMap[K];
  if (attrs) {
    for (const name of Object.keys(attrs)) {
      node.setAttribute(name, String(attrs[name]));
    }
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export function button(label: string, title: string, onClick: () => void, className = ''): HTMLButtonElement {
  const b = el('button', `ptort-button ${className}`.trim(), label);
  b.type = 'button';
  b.title = title;
  b.addEventListener('click', e => {
    e.preventDefault();
    onClick();
  });
  return b;
}

/** Buttons kept on one line together (a narrow toolbar wraps around the group, never inside it). */
export function buttonGroup(...buttons: HTMLButtonElement[]): HTMLSpanElement {
  const group = el('span', 'ptort-button-group');
  for (const b of buttons) {
    group.appendChild(b);
  }
  return group;
}

/** Lines of text as one element per line (for tooltips and info boxes). */
export function setLines(node: HTMLElement, lines: string[]): void {
  node.textContent = '';
  lines.forEach((line, i) => {
    node.appendChild(el('div', i === 0 ? 'ptort-line ptort-line-first' : 'ptort-line', line));
  });
}

/** A legend: one item per entry, a swatch (its colour set through the style object, never markup) and a label. */
export function setLegend(node: HTMLElement, entries: LegendEntry[]): void {
  node.textContent = '';
  for (const entry of entries) {
    const item = el('span', 'ptort-legend-item');
    const swatch = el('span', `ptort-swatch ptort-swatch-${entry.kind}`);
    swatch.style.setProperty('--ptort-swatch-color', entry.color);
    item.appendChild(swatch);
    item.appendChild(el('span', 'ptort-legend-label', entry.label));
    item.title = entry.label;
    node.appendChild(item);
  }
  node.hidden = entries.length === 0;
}

/** Offer `text` as a file download (a Blob URL clicked through a temporary link). */
export function downloadText(text: string, filename: string, mime = 'application/json'): void {
  const blob = new Blob([text], { type: mime });
  const url = URL.createObjectURL(blob);
  const a = el('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), REVOKE_DELAY_MS);
}
