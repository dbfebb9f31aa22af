import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import { keyedValue } from '../src/logic/sliderKeys';

test('arrow keys step by one and stop at the ends', () => {
  assert.equal(keyedValue('ArrowRight', 2, 1, 8), 3);
  assert.equal(keyedValue('ArrowUp', 2, 1, 8), 3);
  assert.equal(keyedValue('ArrowLeft', 2, 1, 8), 1);
  assert.equal(keyedValue('ArrowDown', 1, 1, 8), 1);
  assert.equal(keyedValue('ArrowRight', 8, 1, 8), 8);
});

test('page keys step by a tenth of the range (at least one), Home and End jump to the ends', () => {
  assert.equal(keyedValue('PageUp', 10, 0, 100), 20);
  assert.equal(keyedValue('PageDown', 5, 0, 100), 0);
  assert.equal(keyedValue('PageUp', 2, 1, 8), 3);
  assert.equal(keyedValue('Home', 5, 1, 8), 1);
  assert.equal(keyedValue('End', 5, 1, 8), 8);
});

test('other keys are not the slider s', () => {
  assert.equal(keyedValue('a', 5, 1, 8), null);
  assert.equal(keyedValue('Enter', 5, 1, 8), null);
  assert.equal(keyedValue('Tab', 5, 1, 8), null);
});
