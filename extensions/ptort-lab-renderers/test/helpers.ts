/** Shared test helpers: the committed fixtures and, when PTORT_TRACE_FIXTURE is set, a freshly exported trace. */
import * as fs from 'fs';
import * as path from 'path';

/** The repository's test/fixtures directory (tests run from test-build/test). */
export const FIXTURES = path.resolve(__dirname, '..', '..', 'test', 'fixtures');

export function readJson(file: string): any {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export function fixture(name: string): any {
  return readJson(path.join(FIXTURES, name));
}

/** Extra trace bundles to check: the committed one plus PTORT_TRACE_FIXTURE (written by tests/extension). */
export function traceBundles(): { name: string; bundle: any }[] {
  const out = [{ name: 'fixtures/trace.json', bundle: fixture('trace.json') }];
  const extra = process.env.PTORT_TRACE_FIXTURE;
  if (extra) {
    for (const file of extra.split(path.delimiter).filter(Boolean)) {
      out.push({ name: file, bundle: readJson(file) });
    }
  }
  return out;
}

/** Pipeline payloads to check: the committed one plus PTORT_PIPELINE_FIXTURE (written by tests/extension). */
export function pipelinePayloads(): { name: string; data: any }[] {
  const out = [{ name: 'fixtures/pipeline.json', data: fixture('pipeline.json') }];
  const extra = process.env.PTORT_PIPELINE_FIXTURE;
  if (extra) {
    for (const file of extra.split(path.delimiter).filter(Boolean)) {
      out.push({ name: file, data: readJson(file) });
    }
  }
  return out;
}

/**
 * Compact run data with the Chrome trace of the same runs: the committed pair (fixtures/compact.json, trace.json)
 * plus PTORT_COMPACT_FIXTURE, a list of "compact.json=trace.json" pairs (written by tests/extension).
 */
export function compactBundles(): { name: string; compact: any; trace: any }[] {
  const out = [{ name: 'fixtures/compact.json', compact: fixture('compact.json'), trace: fixture('trace.json') }];
  const extra = process.env.PTORT_COMPACT_FIXTURE;
  if (extra) {
    for (const pair of extra.split(path.delimiter).filter(Boolean)) {
      const [compact, trace] = pair.split('=');
      out.push({ name: compact, compact: readJson(compact), trace: readJson(trace) });
    }
  }
  return out;
}
