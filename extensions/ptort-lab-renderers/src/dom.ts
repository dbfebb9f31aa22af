/**
 * Small DOM helpers. Every user-visible string goes in through textContent or setAttribute, never innerHTML.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

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

/** Lines of text as one element per line (for tooltips and info boxes). */
export function setLines(node: HTMLElement, lines: string[]): void {
  node.textContent = '';
  lines.forEach((line, i) => {
    node.appendChild(el('div', i === 0 ? 'ptort-line ptort-line-first' : 'ptort-line', line));
  });
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
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
