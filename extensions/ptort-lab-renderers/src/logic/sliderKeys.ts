/**
 * The keys of a range slider, done by the explorer itself: a host may cancel the browser's default action for
 * them (Notebook 7 does), and the explorer must never let them reach the notebook's shortcuts.
 */

/** Where `key` moves a slider at `value` in `min..max` (the browser's own steps), or null for any other key. */
export function keyedValue(key: string, value: number, min: number, max: number): number | null {
  const page = Math.max(1, Math.round((max - min) / 10));
  const moves: { [key: string]: number } = {
    ArrowRight: value + 1,
    ArrowUp: value + 1,
    ArrowLeft: value - 1,
    ArrowDown: value - 1,
    PageUp: value + page,
    PageDown: value - page,
    Home: min,
    End: max
  };
  return key in moves ? Math.max(min, Math.min(max, moves[key])) : null;
}
