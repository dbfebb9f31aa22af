import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import {
  ElementLike,
  describePipeline,
  isAllowedAttr,
  isAllowedTag,
  nodeInfo,
  parsePipeline,
  sanitizeSvg
} from '../src/logic/diagram';
import { fixture, pipelinePayloads } from './helpers';

const data = fixture('pipeline.json');

test('parsePipeline reads nodes, edges and DOT', () => {
  const p = parsePipeline(data);
  assert.equal(p.kind, 'pipeline');
  assert.equal(p.nodes.length, 3);
  assert.equal(p.edges[0].depth, 2);
  assert.match(p.dot, /^digraph pipeline/);
  assert.equal(describePipeline(p), 'pipeline: loader \u2192 computer \u2192 storer (2 channels)');
});

for (const { name, data: payload } of pipelinePayloads()) {
  test(`every node and edge of ${name} is described`, () => {
    const p = parsePipeline(payload);
    assert.ok(p.nodes.length > 0);
    for (const n of p.nodes) {
      assert.ok(p.dot.includes(n.id), `node ${n.id} in the DOT`);
      assert.ok(nodeInfo(p, n.id).length >= 1);
    }
    for (const e of p.edges) {
      assert.ok(p.nodes.some(n => n.id === e.source) && p.nodes.some(n => n.id === e.target));
    }
  });
}

test('parsePipeline rejects payloads without DOT', () => {
  assert.throws(() => parsePipeline(null), /not an object/);
  assert.throws(() => parsePipeline({ nodes: [] }), /no DOT/);
});

test('nodeInfo lists kernels and channels in and out', () => {
  const p = parsePipeline(data);
  assert.deepEqual(nodeInfo(p, 'p1'), [
    'computer (process)',
    'kernels: compute_kernel',
    'in:  load_to_compute from loader (depth 2)',
    'out: compute_to_store to storer (depth 2)'
  ]);
  assert.deepEqual(nodeInfo(p, 'nope'), []);
});

test('the SVG allowlist keeps drawing elements and drops active content', () => {
  for (const t of ['svg', 'g', 'polygon', 'path', 'text', 'title', 'ellipse', 'linearGradient']) {
    assert.ok(isAllowedTag(t), t);
  }
  for (const t of ['script', 'foreignObject', 'iframe', 'image', 'use', 'a', 'style', 'animate', 'set']) {
    assert.ok(!isAllowedTag(t), t);
  }
  assert.ok(isAllowedAttr('fill', '#eef3fb'));
  assert.ok(isAllowedAttr('fill', 'url(#l_0)'));
  assert.ok(isAllowedAttr('transform', 'scale(1 1) rotate(0) translate(4 112)'));
  for (const [n, v] of [
    ['onload', 'alert(1)'],
    ['onclick', 'x'],
    ['href', '#a'],
    ['xlink:href', 'javascript:alert(1)'],
    ['style', 'fill: red'],
    ['fill', 'url(http://evil/x)'],
    ['fill', 'url( "https://evil/x" )'],
    ['stroke', 'javascript:1'],
    ['target', '_blank'],
    ['fill', 'url(data:image/svg+xml,AAAA)']
  ]) {
    assert.ok(!isAllowedAttr(n, v), `${n}=${v}`);
  }
});

class FakeEl implements ElementLike {
  attrs: { name: string; value: string }[];
  kids: FakeEl[] = [];
  parent: FakeEl | null = null;
  constructor(
    public tagName: string,
    attrs: { [k: string]: string } = {},
    kids: FakeEl[] = []
  ) {
    this.attrs = Object.entries(attrs).map(([name, value]) => ({ name, value }));
    for (const k of kids) {
      k.parent = this;
      this.kids.push(k);
    }
  }
  get attributes() {
    return this.attrs;
  }
  get children() {
    return this.kids;
  }
  removeAttribute(name: string): void {
    this.attrs = this.attrs.filter(a => a.name !== name);
  }
  remove(): void {
    if (this.parent) {
      this.parent.kids = this.parent.kids.filter(k => k !== this);
    }
  }
}

test('sanitizeSvg strips scripts, handlers and links in place but keeps the drawing', () => {
  const text = new FakeEl('text', { x: '1', onmouseover: 'steal()' });
  const link = new FakeEl('a', { 'xlink:href': 'javascript:alert(1)', target: '_top' }, [
    new FakeEl('polygon', { points: '0,0 1,1', fill: 'url(http://x)' })
  ]);
  const root = new FakeEl('svg', { viewBox: '0 0 10 10', onload: 'x()' }, [
    new FakeEl('script', {}),
    new FakeEl('g', { class: 'node' }, [new FakeEl('title'), text, link]),
    new FakeEl('foreignObject', {}, [new FakeEl('div')])
  ]);
  const removed = sanitizeSvg(root);
  assert.equal(removed, 7);
  assert.deepEqual(
    root.kids.map(k => k.tagName),
    ['g']
  );
  assert.deepEqual(
    root.attrs.map(a => a.name),
    ['viewBox']
  );
  assert.deepEqual(
    text.attrs.map(a => a.name),
    ['x']
  );
  assert.deepEqual(link.attrs, []);
  assert.deepEqual(
    link.kids[0].attrs.map(a => a.name),
    ['points']
  );
});
