/**
 * The MIME types of ptort_lab's notebook outputs: the one TypeScript definition. The Python side defines the same
 * strings (ptort_lab/notebook/display.py: TRACE_MIME, PIPELINE_MIME; ptort_lab/viz/diagrams.py: PIPELINE_MIME);
 * tests/extension/test_logic.py checks that every copy agrees with this file.
 */

/** A %%ptort result: {"runs": {label: Chrome trace}, "knobs": {...}}. */
export const TRACE_MIME = 'application/vnd.ptort.trace+json';

/** A pipeline or workload diagram: {"version", "kind", "name", "title", "nodes", "edges", "dot"}. */
export const PIPELINE_MIME = 'application/vnd.ptort.pipeline+json';
