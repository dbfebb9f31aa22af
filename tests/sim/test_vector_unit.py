"""Data-parallel tasks on a chosen vector unit: ``.vector_unit(n | fn)`` — which AIV each task's spans land on, the
timing that follows (hand-worked), numerics unchanged, and an error for each misuse."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    PtortTypeError,
    PtortValueError,
    Tensor,
    Tile,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    tl,
    workload,
)
from ptort_lab.errors import UserCodeError
from ptort_lab.sim.machine import ascend_910b

F16 = DType.F16
M = ascend_910b
LAUNCH = M.launch_overhead_cycles
TILE = 128 * 128 * 2


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@kernel
def add(x: In[Tile[128, 128, F16]], y: In[Tile[128, 128, F16]], z: Out[Tile[128, 128, F16]]):
    tl.store(z, tl.add(tl.load(x), tl.load(y)))


def heads(n: int):
    """``n`` adds, task h on loop variable h, all on core 0; and its tensors."""
    rng = np.random.default_rng(0)
    X, Y = (Tensor(data=rng.standard_normal((n, 128, 128)).astype(np.float16)) for _ in range(2))
    Z = Tensor(shape=(n, 128, 128), dtype=F16)

    @workload
    def w():
        for h in P(Dense[n](), names=["h"]):
            add[h](x=X[h], y=Y[h], z=Z[h])

    return w().dispatch(DispatchPolicy.round_robin(1)), (X, Y, Z)


def aivs(program) -> dict[int, set[str]]:
    """task id -> the units its spans ran on."""
    out: dict[int, set[str]] = {}
    for s in program.trace().spans:
        out.setdefault(s.task_id, set()).add(s.lane.split(".")[0])
    return out


def test_without_a_choice_a_core_deals_its_vector_tasks_to_its_aivs_in_turn():
    w, _ = heads(4)
    assert aivs(w.compile(compute_values=False).execute()) == {0: {"AIV0"}, 1: {"AIV1"}, 2: {"AIV0"}, 3: {"AIV1"}}


def test_a_function_of_the_task_picks_each_tasks_aiv():
    w, (X, Y, Z) = heads(4)
    program = w.vector_unit(lambda t: 1 if t.get("h") < 2 else 0).compile().execute()
    assert aivs(program) == {0: {"AIV1"}, 1: {"AIV1"}, 2: {"AIV0"}, 3: {"AIV0"}}
    np.testing.assert_array_equal(Z.data, X.data + Y.data)  # values do not depend on the unit


def test_numpy_integers_are_taken():
    w, _ = heads(2)
    program = w.vector_unit(lambda t: np.int64(t.get("h") + 1) % 2).compile(compute_values=False).execute()
    assert aivs(program) == {0: {"AIV1"}, 1: {"AIV0"}}


def test_two_tasks_on_one_aiv_queue_on_its_pipes_by_hand():
    """vector_unit(1): both tasks on AIV1. Its MTE2 issues the four loads back to back (one stream, no HBM sharing):
    each holds the pipe for 32768 / 60 = 547 cycles of streaming + the 118-cycle issue cost = 665, and its data land
    the HBM latency (347) after its stream started, 894 after its issue (memory.py). Task 0's add starts when its
    second load's data are in, task 1's when its fourth's are (in-order V pipe); each store waits for its add plus
    the vadd tail; the first block starts after the launch and its dispatch (10900 + 150)."""
    w, _ = heads(2)
    run = w.vector_unit(1).compile(compute_values=False).execute()
    stream = ceil_div(TILE, M.gm_to_ub.bytes_per_cycle)  # 547
    load, ready = stream + M.gm_to_ub.fixed_cycles, stream + M.hbm_read_latency_cycles  # 665, 894
    add_cycles = M.vec_binary.head_cycles + M.vec_binary.slope_cycles * TILE // M.vector_repeat_bytes
    store = M.ub_to_gm.fixed_cycles + ceil_div(TILE, M.ub_to_gm.bytes_per_cycle)  # 48 + 328 (posted into L2)
    t0 = LAUNCH + M.block_dispatch_cycles
    spans = sorted((s.start, s.lane, s.name, s.end, s.task_id) for s in run.trace().spans)
    add0 = t0 + load + ready
    add1 = t0 + 3 * load + ready  # V is idle again by then: the head is paid again
    assert spans == sorted([
        (t0, "AIV1.MTE2", "load", t0 + load, 0), (t0 + load, "AIV1.MTE2", "load", t0 + 2 * load, 0),
        (t0 + 2 * load, "AIV1.MTE2", "load", t0 + 3 * load, 1), (t0 + 3 * load, "AIV1.MTE2", "load", t0 + 4 * load, 1),
        (add0, "AIV1.V", "add", add0 + add_cycles, 0), (add1, "AIV1.V", "add", add1 + add_cycles, 1),
        (add0 + add_cycles + M.vec_binary.tail_cycles, "AIV1.MTE3", "store",
         add0 + add_cycles + M.vec_binary.tail_cycles + store, 0),
        (add1 + add_cycles + M.vec_binary.tail_cycles, "AIV1.MTE3", "store",
         add1 + add_cycles + M.vec_binary.tail_cycles + store, 1),
    ])


def test_one_aiv_is_slower_than_both_for_the_same_tasks():
    w, _ = heads(4)
    both = w.compile(compute_values=False).execute().stats().total_cycles
    one = w.vector_unit(0).compile(compute_values=False).execute().stats().total_cycles
    assert one > both


def test_cube_only_tasks_ignore_the_choice():
    """A matmul task runs on the AIC whatever vector_unit says (the function is not even asked)."""
    @kernel
    def mm(a: In[Tile[16, 16, F16]], b: In[Tile[16, 16, F16]], c: Out[Tile[16, 16, DType.F32]]):
        tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

    A, B, C = Tensor(shape=(2, 16, 16), dtype=F16), Tensor(shape=(2, 16, 16), dtype=F16), \
        Tensor(shape=(2, 16, 16), dtype=DType.F32)

    @workload
    def w():
        for t in P(Dense[2]()):
            mm[t](a=A[t], b=B[t], c=C[t])

    asked = []
    run = w().vector_unit(lambda t: asked.append(t) or 5).compile(compute_values=False).execute()
    assert {s.lane.split(".")[0] for s in run.trace().spans} == {"AIC"} and asked == []


# -- misuse ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn, what", [
    (lambda t: 2, "vector_unit() puts task 0 (add[0]) on AIV2, but each AI core of 'ascend_910b' has AIV0..AIV1."),
    (lambda t: -1, "vector_unit() puts task 0 (add[0]) on AIV-1, but each AI core of 'ascend_910b' has AIV0..AIV1."),
    (lambda t: 1.0, "the vector_unit() function returned 1.0 for task 0 (add[0]); it must return an AIV index (int)."),
    (lambda t: None, "the vector_unit() function returned None for task 0 (add[0]); it must return an AIV index "
     "(int)."),
    (lambda t: True, "the vector_unit() function returned True for task 0 (add[0]); it must return an AIV index "
     "(int)."),
], ids=["past-the-last", "negative", "float", "none", "bool"])
def test_a_bad_aiv_from_the_function_is_refused_naming_the_task(fn, what):
    w, _ = heads(2)
    with pytest.raises(PtortValueError) as e:
        w.vector_unit(fn).compile(compute_values=False).execute()
    assert e.value.what == what
    assert e.value.hint and "core 0, tile 0, sim time" in str(e.value)


def test_a_function_that_raises_is_the_users_error_at_its_line():
    w, _ = heads(2)
    with pytest.raises(UserCodeError) as e:
        w.vector_unit(lambda t: {0: 1}[t.get("h") + 5]).compile(compute_values=False).execute()  # the user's bug
    assert e.value.what.startswith("the vector_unit() function (for task 0, add[0]) raised KeyError: 5")
    assert e.value.where is not None and "# the user's bug" in e.value.where.code


def test_a_constant_aiv_the_machine_lacks_is_refused_at_compile():
    w, _ = heads(2)
    with pytest.raises(PtortValueError) as e:
        w.vector_unit(2).compile()
    assert e.value.what == "vector_unit(2) puts every task on AIV2, but each AI core of 'ascend_910b' has AIV0..AIV1."
    assert e.value.hint == "Use vector_unit(0)..vector_unit(1)."
    with pytest.raises(PtortValueError, match=r"vector_unit\(1\) puts every task on AIV1, but each AI core of "
                                              r"'one_aiv' has AIV0\."):
        w.vector_unit(1).compile(machine=M.replace(name="one_aiv", aiv_per_core=1))


@pytest.mark.parametrize("unit, error, what", [
    ("1", PtortTypeError, "vector_unit() takes an AIV index (int) or a function of the task returning one, got str "
     "'1'."),
    (True, PtortTypeError, "vector_unit() takes an AIV index (int) or a function of the task returning one, got bool "
     "True."),
    (1.0, PtortTypeError, "vector_unit() takes an AIV index (int) or a function of the task returning one, got float "
     "1.0."),
    (-1, PtortValueError, "vector_unit(-1): an AIV index is >= 0."),
], ids=["str", "bool", "float", "negative"])
def test_a_bad_argument_is_refused_at_the_call(unit, error, what):
    w, _ = heads(1)
    with pytest.raises(error) as e:
        w.vector_unit(unit)
    assert e.value.what == what and e.value.hint
    assert e.value.where is not None and e.value.where.filename.endswith("test_vector_unit.py")


def test_a_pipeline_is_placed_instead():
    ch = Channel(name="ch", depth=1)
    a = process("a").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, t)))
    b = process("b").consumes(ch).body(consume(ch, lambda t: None))
    with pytest.raises(PtortValueError) as e:
        connect(a, b).vector_unit(1)
    assert e.value.what.startswith("vector_unit() picks the AIV of each task of a data-parallel workload")
    assert e.value.hint == 'Put a vector process on AIV1 of its core with .place({"softmax": (0, 1)}).'
