import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import {
  PAN_STEP,
  ZOOM_STEP,
  clampView,
  fitBox,
  niceStep,
  panBox,
  panBy,
  panPixels,
  span,
  tOf,
  ticks,
  wheelAction,
  wheelFactor,
  wheelPixels,
  xOf,
  zoomAt,
  zoomBox
} from '../src/logic/scale';

const B = { start: 0, end: 10000 };
const close = (a: number, b: number, eps = 1e-6): void =>
  assert.ok(Math.abs(a - b) <= eps * Math.max(1, Math.abs(b)), `${a} != ${b}`);

test('zoomAt keeps the anchor under the pointer', () => {
  const v = { start: 2000, end: 6000 };
  const anchor = 3000;
  const before = xOf(anchor, v, 800);
  const z = zoomAt(v, anchor, 0.5, B);
  close(span(z), 2000);
  close(xOf(anchor, z, 800), before);
});

test('zoom out never leaves the bounds; zoom in stops at minSpan', () => {
  assert.deepEqual(zoomAt({ start: 0, end: 8000 }, 100, 10, B), B);
  const z = zoomAt(B, 5000, 1e-9, B, 50);
  close(span(z), 50);
  assert.ok(z.start <= 5000 && z.end >= 5000);
  // Near the edge the anchor may move, but the view stays inside.
  const e = zoomAt({ start: 9000, end: 10000 }, 9990, 3, B);
  assert.ok(e.start >= 0 && e.end <= 10000);
  close(span(e), 3000);
});

test('panBy clamps at both ends and keeps the width', () => {
  const v = { start: 1000, end: 3000 };
  assert.deepEqual(panBy(v, -5000, B), { start: 0, end: 2000 });
  assert.deepEqual(panBy(v, 50000, B), { start: 8000, end: 10000 });
  assert.deepEqual(panBy(v, 500, B), { start: 1500, end: 3500 });
});

test('clampView: wider than bounds -> bounds; degenerate views recover', () => {
  assert.deepEqual(clampView({ start: -5, end: 20000 }, B), B);
  assert.deepEqual(clampView({ start: 5, end: 5 }, B), B);
  const c = clampView({ start: 5000, end: 5000 }, B, 100);
  close(span(c), 100);
  assert.deepEqual(clampView({ start: NaN, end: NaN }, B), B);
});

test('random zoom and pan sequences stay inside the bounds and above minSpan', () => {
  let seed = 12345;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  let v = { ...B };
  for (let i = 0; i < 5000; i++) {
    if (rnd() < 0.6) {
      v = zoomAt(v, v.start + rnd() * span(v), Math.exp((rnd() - 0.5) * 3), B, 10);
    } else {
      v = panBy(v, (rnd() - 0.5) * 3 * span(v), B, 10);
    }
    assert.ok(v.start >= B.start - 1e-9 && v.end <= B.end + 1e-9, `step ${i}: ${JSON.stringify(v)}`);
    assert.ok(span(v) >= 10 - 1e-9);
  }
});

test('xOf and tOf are inverse', () => {
  const v = { start: 123, end: 4567 };
  for (const t of [123, 500, 4567, 2000.5]) {
    close(tOf(xOf(t, v, 731), v, 731), t);
  }
  assert.equal(tOf(10, v, 0), 123);
});

test('wheel: down zooms out, up zooms in, line mode scales, huge deltas are capped', () => {
  assert.ok(wheelFactor(100) > 1);
  assert.ok(wheelFactor(-100) < 1);
  close(wheelFactor(3, 1), wheelFactor(48, 0));
  close(wheelFactor(1e6), wheelFactor(600));
  close(wheelFactor(100) * wheelFactor(-100), 1);
});

test('ticks are nice, inside the view, and not too dense', () => {
  assert.equal(niceStep(10000, 10), 1000);
  assert.equal(niceStep(7300, 10), 1000);
  assert.equal(niceStep(1.3, 10), 0.2);
  assert.equal(niceStep(0, 10), 1);
  const v = { start: 1234, end: 9876 };
  const t = ticks(v, 900, 90);
  assert.ok(t.length >= 2 && t.length <= 11);
  assert.ok(t.every(x => x >= v.start && x <= v.end));
  assert.deepEqual(ticks({ start: 0, end: 1 }, 500, 100), [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

test('fitBox matches the viewport aspect and contains the content', () => {
  const content = { x: 0, y: 0, w: 400, h: 100 };
  const f = fitBox(content, 800, 400, 0);
  close(f.w / f.h, 2);
  assert.ok(f.x <= 0 && f.y <= 0 && f.x + f.w >= 400 && f.y + f.h >= 100);
});

test('zoomBox keeps the focus point fixed and respects the scale limits', () => {
  const fitted = { x: 0, y: 0, w: 400, h: 200 };
  const b = zoomBox(fitted, 0.25, 0.75, 0.5, fitted);
  close(b.w, 200);
  close(b.x + 0.25 * b.w, 0 + 0.25 * 400);
  close(b.y + 0.75 * b.h, 0 + 0.75 * 200);
  const tiny = zoomBox(fitted, 0.5, 0.5, 1e-9, fitted, 0.1, 4);
  close(tiny.w, 40);
  const huge = zoomBox(fitted, 0.5, 0.5, 1e9, fitted, 0.1, 4);
  close(huge.w, 1600);
  const p = panBox(fitted, 100, -50, 800, 400);
  assert.deepEqual(p, { x: -50, y: 25, w: 400, h: 200 });
});

test('wheel over a plot: Ctrl/Cmd zooms, Shift or a sideways swipe pans, a plain wheel scrolls the page', () => {
  const w = (dx: number, dy: number, mods: string[] = []) => ({
    deltaX: dx,
    deltaY: dy,
    deltaMode: 0,
    ctrlKey: mods.includes('ctrl'),
    metaKey: mods.includes('meta'),
    shiftKey: mods.includes('shift')
  });
  assert.equal(wheelAction(w(0, 100)), 'scroll');
  assert.equal(wheelAction(w(0, -100)), 'scroll');
  assert.equal(wheelAction(w(3, 100)), 'scroll'); // a trackpad scroll with a little sideways drift
  assert.equal(wheelAction(w(0, 100, ['ctrl'])), 'zoom');
  assert.equal(wheelAction(w(0, -3, ['meta'])), 'zoom');
  assert.equal(wheelAction(w(0, 100, ['ctrl', 'shift'])), 'zoom');
  assert.equal(wheelAction(w(0, 100, ['shift'])), 'pan');
  assert.equal(wheelAction(w(-40, 5)), 'pan');
  assert.equal(panPixels(w(-40, 5)), -40);
  assert.equal(panPixels(w(0, 120, ['shift'])), 120);
  assert.equal(panPixels({ ...w(0, 3, ['shift']), deltaMode: 1 }), 48);
  assert.equal(wheelPixels(2, 2), 800);
  assert.equal(wheelPixels(-7, 0), -7);
});

test('the zoom and pan steps of the buttons and keys', () => {
  const z = zoomAt(B, 5000, ZOOM_STEP, B);
  close(span(z), 7000);
  close(span(zoomAt(z, 5000, 1 / ZOOM_STEP, B)), 10000);
  const p = panBy({ start: 0, end: 1000 }, PAN_STEP * 1000, B);
  assert.deepEqual(p, { start: 150, end: 1150 });
});
