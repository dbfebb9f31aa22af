"""Bug hunt 32: a data-parallel core count that built one process per core however few tasks (hang, runaway
memory), tensor_layout_join and @kernel(name=...) on values of the wrong type, and the spec's Process/Channel forms
on nonsense items."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ptort_lab import (
    Dense,
    DispatchPolicy,
    DType,
    Event,
    In,
    Out,
    PinnedCosts,
    PtortTypeError,
    PtortValueError,
    Tensor,
    TensorLayout,
    Tile,
    kernel,
    parallel_for,
    task,
    tensor_layout_join,
    tl,
)
from ptort_lab import compat as pto_wsp
from ptort_lab.csp import Channel, process
from ptort_lab.dsl import schedule as schedule_module
from ptort_lab.sim import engine as engine_module

F32 = DType.F32
load = kernel(name="load", cycles=100)(lambda: None)


def four_loads() -> Any:
    return parallel_for(Dense[4](), lambda t: task(load, [t], {}))


def here(e: Any) -> str:
    """The file of the user's line an error names."""
    return e.value.where.filename if e.value.where is not None else ""


# -- 1. core counts -------------------------------------------------------------------------------------------------
CORES_WHAT = ("{api} deals tasks to {n:,} cores, more than the {limit:,} a run may model "
              "(ptort_lab.dsl.schedule.MAX_CORES): each core is a process of the simulator, and the default machine "
              "has 24.")
CORES_HINT = ("Deal the tasks to as many cores as the machine you model has, e.g. {api} for the 910B's 24 AI "
              "cores; to model a bigger machine, raise ptort_lab.dsl.schedule.MAX_CORES.")


@pytest.mark.parametrize("make, api", [
    (lambda n: DispatchPolicy.round_robin(n), "DispatchPolicy.round_robin({})"),
    (lambda n: DispatchPolicy.work_steal(n), "DispatchPolicy.work_steal({})"),
    (lambda n: DispatchPolicy.affinity(lambda t: 0, n), "DispatchPolicy.affinity(key_fn, {})"),
    (lambda n: DispatchPolicy.hash(lambda t: 0, n), "DispatchPolicy.hash(key_fn, {})"),
    (lambda n: DispatchPolicy.dispatch_by(lambda t: 0, n), "DispatchPolicy.dispatch_by(fn, {})"),
])
@pytest.mark.parametrize("n", [10**7, 2**70])
def test_a_dispatch_policy_past_max_cores_is_refused_at_its_line(make, api, n):
    with pytest.raises(PtortValueError) as e:
        make(n)
    assert e.value.what == CORES_WHAT.format(api=api.format("n"), n=n, limit=4096)
    assert e.value.hint == CORES_HINT.format(api=api.format(24))
    assert here(e).endswith("test_hunt32_bad_input.py")
    DispatchPolicy.round_robin(4096)  # (the limit itself is a core count a run may model)


@pytest.mark.parametrize("n", [10**7, 2**70])
def test_streams_past_max_cores_is_refused_when_the_run_starts_not_after_building_each_core(n, processes_started):
    """streams(n) (and a Schedule built by hand) is checked when the run starts: before any core, at the user's
    line."""
    program = four_loads().streams(n).compile(cost_model=PinnedCosts())
    with pytest.raises(PtortValueError) as e:
        program.execute()
    assert processes_started == []
    assert e.value.what == CORES_WHAT.format(api="streams(n)", n=n, limit=4096)
    assert e.value.hint == CORES_HINT.format(api="streams(24)")
    assert here(e).endswith("test_hunt32_bad_input.py")


def test_a_policy_built_before_max_cores_was_lowered_is_refused_when_the_run_starts(monkeypatch):
    w = four_loads().dispatch(DispatchPolicy.round_robin(16))
    monkeypatch.setattr(schedule_module, "MAX_CORES", 8)
    with pytest.raises(PtortValueError) as e:
        w.compile(cost_model=PinnedCosts()).execute()
    assert e.value.what == CORES_WHAT.format(api="DispatchPolicy.round_robin(n)", n=16, limit=8)
    assert e.value.hint == CORES_HINT.format(api="DispatchPolicy.round_robin(24)")
    assert here(e).endswith("test_hunt32_bad_input.py")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, None, "4096"])
def test_a_max_cores_setting_that_is_no_count_is_refused(monkeypatch, bad):
    monkeypatch.setattr(schedule_module, "MAX_CORES", bad)
    with pytest.raises(PtortValueError) as e:
        DispatchPolicy.round_robin(4)
    assert e.value.what == f"the run limit ptort_lab.dsl.schedule.MAX_CORES must be an int >= 1, got {bad!r}."
    assert e.value.hint == "Set it to a core count, e.g. ptort_lab.dsl.schedule.MAX_CORES = 4096."


@pytest.fixture
def processes_started(monkeypatch: Any) -> list[str]:
    """The names of the engine processes the runs start."""
    started: list[str] = []
    add = engine_module.Engine.add_process

    def counted(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        started.append(name)
        return add(self, name, *args, **kwargs)

    monkeypatch.setattr(engine_module.Engine, "add_process", counted)
    return started


@pytest.mark.parametrize("dispatch", [lambda w, n: w.dispatch(DispatchPolicy.round_robin(n)),
                                      lambda w, n: w.streams(n)])
def test_many_cores_and_few_tasks_start_a_process_for_each_core_that_gets_one(monkeypatch, processes_started,
                                                                             dispatch):
    """round_robin(10**6) of 4 tasks (MAX_CORES raised) runs at once, exactly as round_robin(4) does: the run starts
    a process for each core that gets a task, not for every core (it built 10**6 of them, 3.5 s and 1.6 GB)."""
    monkeypatch.setattr(schedule_module, "MAX_CORES", 10**7)
    few = dispatch(four_loads(), 4).compile(cost_model=PinnedCosts()).execute()
    processes_started.clear()
    many = dispatch(four_loads(), 10**6).compile(cost_model=PinnedCosts()).execute()
    assert processes_started == ["core0", "core1", "core2", "core3"]
    assert many.stats().total_cycles == few.stats().total_cycles == 100
    assert [tuple(sp) for sp in many.trace.spans] == [tuple(sp) for sp in few.trace.spans]
    assert many.trace.cores == few.trace.cores == {c: f"core{c}" for c in range(4)}


@kernel
def add1(src: In[Tile[16, 16, F32]], dst: Out[Tile[16, 16, F32]]):
    tl.store(dst, tl.add(tl.load(src), 1.0))


def test_a_run_that_computes_values_starts_only_the_cores_its_keys_pick(processes_started):
    """A value-computing run lists its tasks first: the cores a key function picks are known, and only those start
    (in core order), with the values and cycles of a run on those cores alone."""
    X = Tensor(data=np.arange(6 * 16 * 16, dtype=np.float32).reshape(6, 16, 16), name="X")

    def run(policy: DispatchPolicy) -> Any:
        Y = Tensor(shape=(6, 16, 16), dtype=F32, name="Y")
        w = parallel_for(Dense[6](), lambda b: task(add1, [b], {"src": X[b], "dst": Y[b]})).dispatch(policy)
        return w.compile(cost_model=PinnedCosts(default_cycles=10)).execute(), Y

    program, Y = run(DispatchPolicy.affinity(lambda t: 700 + 3 * (t.get("b") % 2), 1000))
    assert processes_started == ["core700", "core703"]
    np.testing.assert_array_equal(Y.data, X.data + 1)
    assert program.trace.cores == {700: "core700", 703: "core703"} and program.stats().total_cycles == 30


# -- 2. tensor_layout_join ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, which, got", [
    (1, TensorLayout.default(2), "first", "int 1"),
    (TensorLayout.default(2), None, "second", "NoneType None"),
    ("R", "R", "first", "str 'R'"),
])
def test_tensor_layout_join_refuses_what_is_no_layout(a, b, which, got):
    with pytest.raises(PtortTypeError) as e:
        tensor_layout_join(a, b)
    assert e.value.what == f"tensor_layout_join(a, b) joins two TensorLayouts; its {which} argument is {got}."
    assert e.value.hint == ("Pass the tensors' layouts, e.g. tensor_layout_join(x.layout, y.layout), or build one "
                            "with TensorLayout.default(rank).")
    assert here(e).endswith("test_hunt32_bad_input.py")


def test_tensor_layout_join_refuses_a_tensor_and_says_to_take_its_layout():
    x = Tensor(shape=(4, 4), dtype=F32, name="x")
    with pytest.raises(PtortTypeError) as e:
        tensor_layout_join(x, TensorLayout.default(2))
    assert e.value.what.startswith("tensor_layout_join(a, b) joins two TensorLayouts; its first argument is Tensor ")
    assert e.value.hint.startswith("Pass the tensors' layouts, e.g. tensor_layout_join(x.layout, y.layout)")
    assert tensor_layout_join(x.layout, TensorLayout.default(2)) == TensorLayout.default(2)


# -- 3. @kernel(name=...) -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, shown", [(np.array([1, 2]), "array([1, 2])"), (5, "5"), (b"k", "b'k'")])
def test_a_kernel_name_that_is_no_string_is_refused_at_its_line(name, shown):
    with pytest.raises(PtortTypeError) as e:
        kernel(name=name, cycles=1)(lambda: None)
    assert e.value.what == f"@kernel(name=...) must be a string, got {shown}."
    assert e.value.hint == 'Write @kernel(name="load_tile", ...), or leave name out to use the function\'s name.'
    assert here(e).endswith("test_hunt32_bad_input.py")
    assert kernel(name=None, cycles=1)(load_tile_body).name == "load_tile_body"
    assert kernel(name="", cycles=1)(load_tile_body).name == "load_tile_body"  # ("" means the function's, as before)


def load_tile_body() -> None:
    pass


# -- 4. the spec's Process(...).body_func and Channel[T] ------------------------------------------------------------
def test_body_func_skips_a_none_item_as_it_skips_a_body_that_returns_none():
    """Decided deliberate: None stands for what a helper built by side effect (the list form of a body that returns
    None), so it is skipped, and every task built is kept."""
    k = kernel(name="k", cycles=1)(lambda: None)

    def helper() -> None:
        task(k, [1], {})

    p = pto_wsp.Process("a3").body_func(lambda: [task(k, [0], {}), helper(), None])
    assert [t.params for t in p.workload.enumerate()] == [[0], [1]]


@pytest.mark.parametrize("item, shown", [(5, "int 5"), (2.5, "float 2.5"), (np.float32(1), "float32 np.float32(1.0)"),
                                         ([1], "list [1]"), (np.array([1]), "ndarray array([1])")])
def test_a_channel_type_parameter_that_is_no_type_is_refused(item, shown):
    with pytest.raises(PtortTypeError) as e:
        pto_wsp.Channel[item](name="ci", depth=1)
    assert e.value.what == (f"Channel[T] takes the type of the channel's items (Tensor, int, Any, ...), got {shown}.")
    assert e.value.hint == ('Write Channel[Tensor](name="data_channel", depth=2) (the spec\'s form), or '
                            'Channel(name=..., depth=2).')
    assert here(e).endswith("test_hunt32_bad_input.py")


def test_channel_takes_one_type_parameter():
    with pytest.raises(PtortTypeError) as e:
        pto_wsp.Channel[Tensor, int](name="ci", depth=1)
    assert e.value.what == "Channel[T] takes one type parameter (the type of the channel's items), got 2."
    assert e.value.hint == ('Write Channel[Tensor](name="data_channel", depth=2) (the spec\'s form), or '
                            'Channel(name=..., depth=2).')


@pytest.mark.parametrize("item", [Tensor, int, Any, object, "Tensor", None, list[int], int | None,
                                  Tile[16, 16, F32]])
def test_channel_types_as_the_spec_and_typing_write_them_are_taken(item):
    ch = pto_wsp.Channel[item](name="ci", depth=2)
    assert (ch.name, ch.depth) == ("ci", 2)


# -- names with control characters (hunt 2: a newline broke the stats and summary tables) ------------------------------
@pytest.mark.parametrize("make, what, fixed", [
    (lambda: process("load\nstage"), "Process name 'load\\nstage'", "Process(name='load_stage', ...)"),
    (lambda: Channel("l2c\t", depth=2), "Channel name 'l2c\\t'", "Channel(name='l2c_', ...)"),
    (lambda: Event("done\r"), "Event name 'done\\r'", "Event(name='done_', ...)"),
    (lambda: kernel(name="k\n1", cycles=1)(load_tile_body), "@kernel(name=...) 'k\\n1'", "@kernel(name='k_1')"),
])
def test_a_name_with_a_control_character_is_refused_where_it_is_made(make, what, fixed):
    with pytest.raises(PtortValueError) as e:
        make()
    assert e.value.what == f"{what} holds a control character (a newline, tab, ...)."
    assert e.value.hint == f"Name it with printable characters only, e.g. {fixed}."
    assert here(e).endswith("test_hunt32_bad_input.py")
    assert process("☃ stage").name == "☃ stage"  # (any printable name, unicode too)
