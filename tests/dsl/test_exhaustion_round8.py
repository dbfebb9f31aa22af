"""Round 8 resource exhaustion in the DSL: a total limit on the loop iterations a listing visits (loops sized per
outer iteration add up past any single size check), and chains built up in a loop (deeper than Python's recursion
limit) refused with the line that built them."""
from __future__ import annotations

import pytest

from ptort_lab import (
    Channel,
    Dense,
    DenseDyn,
    P,
    PtortValueError,
    RunLimitError,
    cond,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    sequential,
    task,
    workload,
)
from ptort_lab.dsl import steps as steps_module
from ptort_lab.dsl.tree import too_deep
from tests.source_lines import here, located

k = kernel(name="k", cycles=10)(lambda: None)


# -- item 1: the total of loop iterations listed ---------------------------------------------------------------------
def test_default_loop_iteration_limit_matches_the_static_one() -> None:
    from ptort_lab.dsl.axes import MAX_ITERATIONS
    assert steps_module.MAX_LOOP_ITERATIONS == MAX_ITERATIONS == 20_000_000


def _dyn_empty() -> tuple[object, int]:
    @workload
    def w():  # type: ignore[no-untyped-def]
        for i in P(Dense[100]()):
            for _j in P(DenseDyn(i * 3)):  # each inner size is small; the total is 100 + 14,850 iterations
                pass
    return w(), here() - 2


def _check_iterations(e: pytest.ExceptionInfo[RunLimitError], line: int, limit: str) -> None:
    msg = str(e.value)
    assert "Run limit: the loops listed so far visited 1,001 iterations in all, more than the 1,000 a workload (or " \
           "a process of a pipeline) may list; every iteration of every loop counts, also one that launches no " \
           "task." in msg
    assert "Loops sized per outer iteration (DenseDyn of a loop expression) add up" in msg
    assert e.value.hint == ("Shorten the loops or use larger tiles (fewer, bigger iterations). If the listing is "
                            "meant to be this long, raise the limit: ptort_lab.dsl.steps.MAX_LOOP_ITERATIONS = "
                            f"100_000_000 (now {limit}).")
    located(e, line)


def test_loops_sized_per_iteration_stop_at_the_total_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps_module, "MAX_LOOP_ITERATIONS", 1000)
    w, line = _dyn_empty()
    program = w.compile(compute_values=False)  # type: ignore[attr-defined]
    with pytest.raises(RunLimitError) as e:
        program.execute()
    _check_iterations(e, line, "1_000")
    with pytest.raises(RunLimitError) as e:
        w.enumerate()  # type: ignore[attr-defined]
    _check_iterations(e, line, "1_000")


def test_raising_the_loop_iteration_limit_lets_the_listing_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps_module, "MAX_LOOP_ITERATIONS", 100 + 14_850)
    w, _ = _dyn_empty()
    assert w.enumerate() == []  # type: ignore[attr-defined]


def test_loops_that_launch_tasks_count_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps_module, "MAX_LOOP_ITERATIONS", 1000)

    @workload
    def w():  # type: ignore[no-untyped-def]
        for i in P(Dense[10]()):
            for j in P(DenseDyn(i * 30)):
                k[j]()
    line = here() - 2
    with pytest.raises(RunLimitError) as e:
        w().enumerate()
    _check_iterations(e, line, "1_000")


def test_a_pipeline_process_counts_its_own_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps_module, "MAX_LOOP_ITERATIONS", 1000)
    ch = Channel(name="ch", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, task(k, [t], {}))))
    inner = for_each(Dense[2000](), lambda j: cond(j < 0, task(k, [j], {}))); line = here()  # noqa: E702
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: inner))
    program = connect(src, dst).compile(compute_values=False)
    with pytest.raises(RunLimitError) as e:
        program.execute()
    _check_iterations(e, line, "1_000")


def test_a_loop_iteration_limit_that_is_not_a_count_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps_module, "MAX_LOOP_ITERATIONS", None)
    w, _ = _dyn_empty()
    with pytest.raises(PtortValueError) as e:
        w.enumerate()  # type: ignore[attr-defined]
    assert str(e.value).startswith("the run limit ptort_lab.dsl.steps.MAX_LOOP_ITERATIONS must be an int >= 1, got "
                                   "None.")
    assert e.value.hint == ("Set it to an iteration count, e.g. ptort_lab.dsl.steps.MAX_LOOP_ITERATIONS = "
                            "100_000_000.")


# -- item 5: chains built up in a loop --------------------------------------------------------------------------------
DEPTH = 3000  # past Python's default recursion limit (1,000) from any caller's stack


def _seq_chain() -> tuple[object, int]:
    body = task(k, [0], {})
    for i in range(1, DEPTH):
        body = sequential(body, task(k, [i], {}))
    return body, here() - 1


def _check_deep(e: pytest.ExceptionInfo[PtortValueError], line: int, kind: str) -> None:
    what = ("cond(...) chooses between the previous one and a step" if kind == "cond"
            else f"{kind}(...) holds the previous one")
    assert str(e.value).startswith(
        f"workload '{kind}' nests {DEPTH:,} levels deep (each {what}, built over and over at "
        f"test_exhaustion_round8.py:{line}): too deep for ptort_lab to walk, Python's recursion limit stops it.")
    assert e.value.hint == ("Build the chain flat: collect the steps in a list and pass them at once, "
                            "sequential(*steps) (or combine(*steps) when their order does not matter); for a chain "
                            "of conds, put one cond(pred, step) per step in that list.")
    located(e, line)


def test_a_deep_sequential_chain_as_a_process_body_names_its_line() -> None:
    body, line = _seq_chain()
    with pytest.raises(PtortValueError) as e:
        process("a").body(body)  # type: ignore[arg-type]
    _check_deep(e, line, "sequential")


def test_a_deep_sequential_chain_as_a_data_parallel_workload_names_its_line() -> None:
    body, line = _seq_chain()
    with pytest.raises(PtortValueError) as e:
        body.compile(compute_values=False).execute()  # type: ignore[attr-defined]
    _check_deep(e, line, "sequential")
    with pytest.raises(PtortValueError) as e:
        body.enumerate()  # type: ignore[attr-defined]
    _check_deep(e, line, "sequential")


def test_a_deep_cond_chain_names_its_line() -> None:
    body = task(k, [0], {})
    for i in range(1, DEPTH):
        body = cond(True, body, task(k, [i], {}))  # (listing takes the deep branch every time)
    line = here() - 1
    with pytest.raises(PtortValueError) as e:
        process("a").body(body)
    _check_deep(e, line, "cond")
    with pytest.raises(PtortValueError) as e:
        body.enumerate()
    _check_deep(e, line, "cond")


def test_a_flat_sequential_of_the_same_steps_runs() -> None:
    flat = sequential(*[task(k, [i], {}) for i in range(DEPTH)])
    assert flat.compile(compute_values=False).execute().stats().task_count == DEPTH
    flat = sequential(*[task(k, [i], {}) for i in range(DEPTH)])
    program = connect(process("a").body(flat)).compile(compute_values=False)
    assert program.execute().stats().task_count == DEPTH


def test_a_shallow_tree_is_not_blamed_for_a_recursion_error() -> None:
    assert too_deep(sequential(task(k, [0], {}), task(k, [1], {}))) is None


def test_a_deep_pipeline_body_run_from_a_deep_stack_names_the_nesting_not_a_bare_recursion_error():
    """Past .body() and compile(), the engine's step walks can still recurse too deep when the caller's own stack is
    deep (a notebook, a test runner): the run names the nesting too (sim/runner.py)."""
    from ptort_lab import Channel, Dense, PinnedCosts, connect, consume, for_each, kernel, process, send, sequential
    from ptort_lab import task as make_task

    @kernel(cycles=5)
    def k():
        pass

    ch = Channel(name="c", depth=2)
    body = make_task(k, [0], {})
    for i in range(800):
        body = sequential(body, make_task(k, [i], {}))
    prod = process("prod").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, make_task(k, [t], {}))))
    cons = process("cons").consumes(ch).body(consume(ch, lambda t: body))

    def nest(n: int):
        return connect(prod, cons).compile(cost_model=PinnedCosts()).execute() if n == 0 else nest(n - 1)

    with pytest.raises(PtortValueError, match=r"nests 802 levels deep \(each sequential\(\.\.\.\) holds the previous"):
        nest(300)
