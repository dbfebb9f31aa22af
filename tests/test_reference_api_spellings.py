"""The reference's (PTO-WSP v9) keyword names of cond() and select() (its primitives.py: ``cond(predicate,
then_workload, else_workload)``, ``select(sparse, body)``), taken beside ours; both spellings of one argument at once
is refused, naming both. And ``Workload("task", kernel=@kernel, params=[i], resources={...})``, the node its
tests/test_codegen_cspt_pipeline.py builds by hand."""
from __future__ import annotations

import numpy as np
import pytest
from source_lines import here, located

import ptort_lab.compat as pto_wsp
from ptort_lab import PtortTypeError

COND_USAGE = "cond(pred, then, otherwise) or cond(predicate=..., then_workload=..., else_workload=...)"
SELECT_USAGE = "select(source, body) or select(sparse=..., body=...)"


def kernels(w):
    return [(t.kernel, t.params) for t in w.enumerate()]


# -- cond ------------------------------------------------------------------------------------------------------------
def test_cond_takes_the_reference_keywords():
    fast, slow = pto_wsp.task("fast", [], []), pto_wsp.task("slow", [], [])
    assert kernels(pto_wsp.cond(predicate=True, then_workload=fast, else_workload=slow)) == [("fast", [])]
    assert kernels(pto_wsp.cond(predicate=False, then_workload=fast, else_workload=slow)) == [("slow", [])]
    w = pto_wsp.cond(predicate=False, then_workload=fast, else_workload=slow)
    assert dict(w._kwargs) == {"predicate": False, "then_workload": fast, "else_workload": slow}
    assert w.has_else is True


def test_cond_mixes_the_two_spellings_and_keeps_its_optional_otherwise():
    fast, slow = pto_wsp.task("fast", [], []), pto_wsp.task("slow", [], [])
    assert kernels(pto_wsp.cond(False, then_workload=fast, else_workload=slow)) == [("slow", [])]
    assert kernels(pto_wsp.cond(predicate=False, then=fast, otherwise=slow)) == [("slow", [])]
    alone = pto_wsp.cond(predicate=False, then_workload=fast)  # no else: ours is optional (the reference's is not)
    assert kernels(alone) == [] and alone.has_else is False
    assert pto_wsp.cond(False, fast, else_workload=None).has_else is False  # None: no otherwise branch, as ours


def test_cond_reference_keywords_inside_a_workload_select_by_loop_expression():
    @pto_wsp.workload
    def tiered():
        for b in pto_wsp.P(pto_wsp.Dense[4]()):
            pto_wsp.cond(predicate=b < 2, then_workload=pto_wsp.task("attn_2k", [b], []),
                         else_workload=pto_wsp.task("attn_8k", [b], []))

    assert kernels(tiered()) == [("attn_2k", [0]), ("attn_2k", [1]), ("attn_8k", [2]), ("attn_8k", [3])]


@pytest.mark.parametrize("args, kwargs, what", [
    ((True, "T"), {"predicate": False},
     "cond() got both pred (its 1st argument, or pred=) and predicate=: they are one argument, spelled as ptort_lab "
     "and as the reference (PTO-WSP v9) name it."),
    ((), {"pred": True, "then": "T", "then_workload": "T"},
     "cond() got both then (its 2nd argument, or then=) and then_workload=: they are one argument, spelled as "
     "ptort_lab and as the reference (PTO-WSP v9) name it."),
    ((True, "T", None), {"else_workload": "T"},
     "cond() got both otherwise (its 3rd argument, or otherwise=) and else_workload=: they are one argument, "
     "spelled as ptort_lab and as the reference (PTO-WSP v9) name it."),
], ids=["pred", "then", "otherwise"])
def test_cond_refuses_one_argument_given_under_both_names(args, kwargs, what):
    t = pto_wsp.task("k", [], [])
    args = tuple(t if a == "T" else a for a in args)
    kwargs = {k: t if v == "T" else v for k, v in kwargs.items()}
    with pytest.raises(PtortTypeError) as e:
        pto_wsp.cond(*args, **kwargs)
    located(e, here() - 1)
    assert e.value.what == what
    assert e.value.hint == f"Give it once, under either name: {COND_USAGE}."


def test_cond_names_a_missing_argument_by_both_spellings():
    t = pto_wsp.task("k", [], [])
    with pytest.raises(PtortTypeError) as e:
        pto_wsp.cond(then_workload=t)
    located(e, here() - 1)
    assert e.value.what == "cond() is missing pred (its 1st argument; the reference's predicate=)."
    assert e.value.hint == f"Write {COND_USAGE}."
    with pytest.raises(PtortTypeError) as e:
        pto_wsp.cond(predicate=True)
    located(e, here() - 1)
    assert e.value.what == "cond() is missing then (its 2nd argument; the reference's then_workload=)."


# -- select ----------------------------------------------------------------------------------------------------------
def test_select_takes_the_reference_keyword_sparse():
    w = pto_wsp.select(sparse=[0, 2, 5], body=lambda e: pto_wsp.task("expert", [e], []))
    assert kernels(w) == [("expert", [0]), ("expert", [2]), ("expert", [5])]
    assert dict(w._kwargs)["sparse"] == [0, 2, 5]
    routing = pto_wsp.Sparse(2, [0, 2, 5], [1, 3, 0, 2, 4])
    assert kernels(pto_wsp.select(sparse=routing[1], body=lambda e: pto_wsp.task("expert", [e], []))) == \
        [("expert", [0]), ("expert", [2]), ("expert", [4])]
    assert kernels(pto_wsp.select([7], body=lambda e: pto_wsp.task("expert", [e], []))) == [("expert", [7])]


def test_select_refuses_source_and_sparse_together():
    with pytest.raises(PtortTypeError) as e:
        pto_wsp.select([1], sparse=[2], body=lambda e: pto_wsp.task("k", [e], []))
    located(e, here() - 1)
    assert e.value.what == ("select() got both source (its 1st argument, or source=) and sparse=: they are one "
                            "argument, spelled as ptort_lab and as the reference (PTO-WSP v9) name it.")
    assert e.value.hint == f"Give it once, under either name: {SELECT_USAGE}."


def test_select_names_a_missing_argument():
    with pytest.raises(PtortTypeError) as e:
        pto_wsp.select(body=lambda e: pto_wsp.task("k", [e], []))
    located(e, here() - 1)
    assert e.value.what == "select() is missing source (its 1st argument; the reference's sparse=)."
    assert e.value.hint == f"Write {SELECT_USAGE}."
    with pytest.raises(PtortTypeError) as e:
        pto_wsp.select(sparse=[1])
    located(e, here() - 1)
    assert e.value.what == "select() is missing body (its 2nd argument)."


# -- Workload("task", ...) built by hand, as the reference's CSPT test does -------------------------------------------
def _square_pipeline(by_hand: bool):
    """The reference's test_cspt_pipeline_codegen_first_cpu_sim_runs_and_overlaps, tasks built by hand or by task()."""
    tiles = pto_wsp.Dense[4]()
    x_np = np.arange(4 * 4 * 4, dtype=np.float32).reshape(4, 4, 4)
    y_np = np.zeros_like(x_np)
    f32 = pto_wsp.DType.F32
    x = pto_wsp.Tensor(data=x_np, shape=x_np.shape, dtype=f32)
    tmp = pto_wsp.Tensor(data=np.zeros_like(x_np), shape=x_np.shape, dtype=f32)
    y = pto_wsp.Tensor(data=y_np, shape=y_np.shape, dtype=f32)

    @pto_wsp.kernel
    def load(src: pto_wsp.In[pto_wsp.Tile[4, 4, f32]], dst: pto_wsp.Out[pto_wsp.Tile[4, 4, f32]]):
        pto_wsp.pto.store(dst, src)

    @pto_wsp.kernel
    def square(inp: pto_wsp.In[pto_wsp.Tile[4, 4, f32]], out: pto_wsp.Out[pto_wsp.Tile[4, 4, f32]]):
        pto_wsp.pto.store(out, pto_wsp.pto.mul(inp, inp))

    def make(k, i, resources):
        return pto_wsp.Workload("task", kernel=k, params=[i], resources=resources) if by_hand else \
            pto_wsp.task(k, [i], resources)

    ch = pto_wsp.Channel("l2c", depth=1)
    producer = pto_wsp.process("producer").produces(ch).body(
        pto_wsp.for_each(tiles, lambda i: pto_wsp.send(ch, make(load, i, {"src": x[i], "dst": tmp[i]}))))
    consumer = pto_wsp.process("consumer").consumes(ch).body(
        pto_wsp.consume(ch, lambda i: make(square, i, {"inp": tmp[i], "out": y[i]})))
    program = pto_wsp.connect([producer, consumer], [ch]).named("cspt_pipe").compile(target="cpu_sim")
    program.execute()
    program.synchronize()
    return program, x_np, y_np


def test_a_task_node_built_by_hand_runs_as_the_task_call_builds_it():
    by_hand, x_np, y_np = _square_pipeline(by_hand=True)
    assert np.array_equal(y_np, x_np * x_np)
    assert by_hand.stats.task_count == 8
    by_call, _, _ = _square_pipeline(by_hand=False)
    assert by_hand.stats.total_cycles == by_call.stats.total_cycles
    assert [(s.name, s.start, s.end) for s in by_hand.trace().spans] == \
        [(s.name, s.start, s.end) for s in by_call.trace().spans]


def test_a_task_node_built_by_hand_keeps_its_fields():
    w = pto_wsp.Workload("task", kernel="k", params=[0, 1], resources=["a", "b"])
    assert (w._kind, w.kernel, w.params, w.resources) == ("task", "k", [0, 1], ["a", "b"])
    assert [(t.kernel, t.params, t.id) for t in w.enumerate()] == [("k", [0, 1], 0)]
