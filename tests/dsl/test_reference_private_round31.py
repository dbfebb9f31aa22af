"""Reference (PTO-WSP v9) compatibility, round 31: the private names its own tests read (tests/test_python_frontend.py
reads ``w._kind``, ``w._kwargs``, ``w._dispatch_policy``, ``policy._kwargs["n"]``, ``w._copy()``, ... about 45
times). They are read-only aliases of the public fields; these tests copy the reference's assertions, then check
each alias against its public field and that none can be assigned."""
from __future__ import annotations

import dataclasses

import pytest

from ptort_lab import (
    Channel,
    Dense,
    DenseDyn,
    Deps,
    DepsMode,
    DispatchPolicy,
    DSLUsageError,
    P,
    Pools,
    ReadyPolicy,
    Schedule,
    StartPolicy,
    TaskGraphConfig,
    TaskWindow,
    TimingPolicy,
    TracePolicy,
    WindowMode,
    combine,
    cond,
    connect,
    consume,
    for_each,
    parallel_for,
    process,
    select,
    send,
    sequential,
    task,
    workload,
)


# -- the reference's assertions, as it writes them ------------------------------------------------------------------
def test_workload_kinds_read_through_kind():
    @workload
    def attention(batch, heads):
        for b, h in P(batch, heads):
            task("attn", [b, h], [])

    @workload
    def scan(seq_len):
        for i in P.seq(seq_len):
            task("scan_step", [i], [])

    assert attention(DenseDyn(4), Dense[8]())._kind == "parallel_for"
    assert scan(DenseDyn(32))._kind == "for_each"
    assert parallel_for(DenseDyn(4), lambda b: task("kernel", [b], []))._kind == "parallel_for"
    assert for_each(DenseDyn(8), lambda i: task("scan", [i], []))._kind == "for_each"
    w = task("my_kernel", [1, 2], ["tensor1", "tensor2"])
    assert w._kind == "task"
    assert w._kwargs["kernel"] == "my_kernel"
    t1, t2 = task("k1", [], []), task("k2", [], [])
    assert combine(t1, t2)._kind == "combine"
    assert sequential(t1, t2)._kind == "sequential"


def test_schedule_attributes_read_as_the_reference_sets_them():
    w = task("kernel", [], [])
    w2 = w.dispatch(DispatchPolicy.round_robin(4))
    assert w2._dispatch_policy is not None
    assert w._dispatch_policy is None
    assert w.streams(4)._stream_count == 4
    assert w.stream_by(lambda t: t.params[0] % 2)._stream_by_fn is not None
    assert w.timing(TimingPolicy.immediate)._timing_policy is not None
    chained = w.dispatch(DispatchPolicy.round_robin(4)).streams(2).timing(TimingPolicy.immediate)
    assert chained._dispatch_policy is not None
    assert chained._stream_count == 2
    assert chained._timing_policy is not None
    scheduled = parallel_for(DenseDyn(4), lambda b: task("attn", [b], [])) \
        .dispatch(DispatchPolicy.round_robin(4)).streams(2).timing(TimingPolicy.immediate)
    assert scheduled._dispatch_policy is not None
    assert scheduled._stream_count == 2


def test_task_graph_policy_kinds_and_kwargs():
    deps = Deps.hybrid(infer=DepsMode.INFER_TENSOR_MAP_EXACT, explicit=True)
    assert deps.mode == DepsMode.HYBRID
    assert deps._kwargs["infer"] == DepsMode.INFER_TENSOR_MAP_EXACT
    assert deps._kwargs["explicit"] == True  # noqa: E712 (the reference's spelling)
    assert ReadyPolicy.fifo()._kind == "fifo"
    assert ReadyPolicy.work_steal()._kind == "work_steal"
    priority = ReadyPolicy.priority(lambda t: t.id)
    assert priority._kind == "priority"
    assert priority._kwargs["priority_fn"] is not None
    threshold = StartPolicy.threshold(100)
    assert threshold._kind == "threshold"
    assert threshold._kwargs["n"] == 100
    assert StartPolicy.after_orchestration()._kind == "after_orchestration"
    assert TracePolicy.none()._kind == "none"
    cycles = TracePolicy.cycles(lambda t: 100)
    assert cycles._kind == "cycles"
    assert cycles._kwargs["cost_fn"] is not None
    assert Pools.single()._kind == "single"
    assert Pools.by_exec_unit()._kind == "by_exec_unit"
    custom = Pools.custom(lambda t: "vector" if t.is_cube else "cube")
    assert custom._kind == "custom"
    assert custom._kwargs["pool_fn"] is not None
    config = TaskGraphConfig()
    assert config.pools._kind == "single"
    assert config.ready._kind == "fifo"
    assert config.start._kind == "after_orchestration"
    assert config.trace._kind == "none"


def test_task_graph_config_read_through_the_workload():
    w = task("kernel", [], [])
    w2 = w.task_graph()
    assert w2._task_graph_config is not None
    assert w._task_graph_config is None
    streamed = w.streams(4).stream_by(lambda t: t.id % 4)
    assert streamed._stream_count == 4
    assert streamed._stream_by_fn is not None
    cleared = streamed.task_graph()
    assert cleared._stream_count is None
    assert cleared._stream_by_fn is None
    assert cleared._task_graph_config is not None
    assert w.task_graph(deps=Deps.hybrid())._task_graph_config.deps.mode == DepsMode.HYBRID
    windowed = w.task_graph(window=TaskWindow(4096, "tasks", WindowMode.STALL))
    assert windowed._task_graph_config.window.size == 4096
    assert windowed._task_graph_config.window.mode == WindowMode.STALL
    assert w.task_graph(pools=Pools.by_exec_unit())._task_graph_config.pools._kind == "by_exec_unit"
    assert w.task_graph(ready=ReadyPolicy.work_steal())._task_graph_config.ready._kind == "work_steal"
    started = w.task_graph(start=StartPolicy.threshold(100))
    assert started._task_graph_config.start._kind == "threshold"
    assert started._task_graph_config.start._kwargs["n"] == 100
    assert w.task_graph(trace=TracePolicy.cycles())._task_graph_config.trace._kind == "cycles"
    full = w.dispatch(DispatchPolicy.work_steal()).task_graph(
        deps=Deps.infer_tensor_map_exact(), window=TaskWindow(8192, "tasks", WindowMode.STALL),
        pools=Pools.by_exec_unit(), ready=ReadyPolicy.work_steal(), start=StartPolicy.threshold(100),
        trace=TracePolicy.cycles())
    assert full._dispatch_policy is not None
    config = full._task_graph_config
    assert config.deps.mode == DepsMode.INFER_TENSOR_MAP_EXACT
    assert config.window.size == 8192
    assert config.pools._kind == "by_exec_unit"
    assert config.ready._kind == "work_steal"
    assert config.start._kwargs["n"] == 100
    assert config.trace._kind == "cycles"
    w3 = w2.task_graph(deps=Deps.explicit())
    assert w2._task_graph_config.deps.mode == DepsMode.INFER_TENSOR_MAP_EXACT
    assert w3._task_graph_config.deps.mode == DepsMode.EXPLICIT


def test_csp_kinds():
    ch = Channel("ch", depth=2)
    assert send(ch, task("loader", [], []))._kind == "send"
    assert consume(ch, lambda t: task("process", [t], []))._kind == "consume"
    # (the reference's test wires bodies that neither send nor consume, which connect() refuses here)
    p1 = process("loader").produces(ch).body(for_each(Dense[2](), lambda i: send(ch, task("load", [i], []))))
    p2 = process("compute").consumes(ch).body(consume(ch, lambda t: task("compute", [t], [])))
    pipeline = connect([p1, p2], [ch])
    assert pipeline._kind == "connect"
    assert dict(pipeline._kwargs) == {"processes": [p1, p2], "channels": [ch]}


def test_type_errors_and_metadata():
    @workload
    def simple_workload():
        pass

    w = simple_workload()
    assert hasattr(w, "_type_errors")
    assert w._type_errors == []
    t = task("kernel", [], [])
    assert hasattr(t, "_name")
    assert t._name is None
    assert t.named("my_workload")._name == "my_workload"
    assert hasattr(t, "_params")
    assert t._params == []
    batch, heads = Dense[4](), Dense[8]()
    w = t.with_params(("batch", batch), ("heads", heads))
    assert len(w._params) == 2
    assert w._params[0] == ("batch", batch)
    assert w._params[1] == ("heads", heads)
    assert t._params == []
    assert isinstance(t._schedule, Schedule)
    policy = DispatchPolicy.round_robin(4)
    assert t.dispatch(policy)._schedule.dispatch is policy
    assert t.dispatch(policy)._dispatch_policy is policy
    assert t.streams(4)._schedule.streams == 4 and t.streams(4)._stream_count == 4
    fn = lambda t: t.id % 2  # noqa: E731
    assert t.stream_by(fn)._schedule.stream_by is fn and t.stream_by(fn)._stream_by_fn is fn
    timing = TimingPolicy.immediate
    assert t.timing(timing)._schedule.timing is timing and t.timing(timing)._timing_policy is timing


def test_copy_keeps_name_params_and_schedule():
    batch = Dense[4]()
    w1 = task("kernel", [], []).named("test_workload").with_params(("batch", batch)) \
        .dispatch(DispatchPolicy.round_robin(4)).streams(2)
    w2 = w1._copy()
    assert w2 is not w1
    assert w2._name == "test_workload"
    assert len(w2._params) == 1
    assert w2._schedule.dispatch is not None
    assert w2._schedule.streams == 2
    assert w2.schedule == w1.schedule and w2.kernel == w1.kernel
    assert [t.kernel for t in w2.enumerate()] == ["kernel"]


# -- each alias is its public field, under the reference's keys -----------------------------------------------------
def test_kwargs_keys_per_kind():
    axis = Dense[3]()
    body = task("k", [], [])
    loop = parallel_for(axis, lambda i: task("k", [i], []))
    assert set(loop._kwargs) == {"axis", "body", "var_name"}
    assert loop._kwargs["axis"] is loop.axes[0] and loop._kwargs["body"] is loop.body
    assert loop._kwargs["var_name"] == loop.vars[0].name
    seq = for_each(axis, lambda i: task("k", [i], []))
    assert set(seq._kwargs) == {"axis", "body", "var_name"}
    sel = select([0, 2], lambda e: task("k", [e], []))
    assert set(sel._kwargs) == {"sparse", "body", "var_name"} and sel._kwargs["sparse"] == [0, 2]
    branch = cond(True, body, task("other", [], []))
    assert dict(branch._kwargs) == {"predicate": True, "then_workload": branch.then, "else_workload": branch.otherwise}
    group = combine(body, task("k2", [], []))
    assert group._kwargs["workloads"] == list(group.parts)
    ch = Channel("c", depth=1)
    sent = send(ch, task("k", [0], []))
    assert dict(sent._kwargs) == {"channel": ch, "value": sent.value}
    consumed = consume(ch, lambda t: task("k", [t], []))
    assert dict(consumed._kwargs) == {"channel": ch, "body": consumed.body}
    t = task("k", (1, 2), ["r"])
    assert dict(t._kwargs) == {"kernel": "k", "params": [1, 2], "resources": ["r"]}


def test_multi_axis_loop_kwargs_name_every_axis():
    """P(a, b) is one node here (the reference nests one per axis): its axis is the tuple, var_name the names."""
    a, b = Dense[2](), Dense[4]()

    @workload
    def grid():
        for i, j in P(a, b, names=["i", "j"]):
            task("k", [i, j], [])

    w = grid()
    assert w._kwargs["axis"] == (a, b) and w._kwargs["var_name"] == "i,j"


def test_aliases_equal_the_public_fields():
    w = task("k", [], []).named("n").with_params(("b", Dense[2]())).dispatch(DispatchPolicy.round_robin(2)) \
        .stream_by(lambda t: 0).timing(TimingPolicy.batched(2))
    assert w._kind == w.kind and w._name == w.name and w._params == list(w.schedule.params)
    assert w._schedule is w.schedule and w._type_errors is w.type_errors
    assert w._dispatch_policy is w.schedule.dispatch and w._stream_by_fn is w.schedule.stream_by
    assert w._timing_policy is w.schedule.timing and w._stream_count == w.schedule.streams == 1
    g = w.task_graph()
    assert g._task_graph_config is g.schedule.graph
    for policy in (ReadyPolicy.fifo(), StartPolicy.threshold(3), Pools.single(), TracePolicy.none(),
                   DispatchPolicy.hash(lambda t: 0, 2), TimingPolicy.rate_limit(5)):
        assert policy._kind == policy.kind
    assert dict(DispatchPolicy.hash(len, 2)._kwargs) == {"key_fn": len, "num_aicpus": 2}
    assert dict(DispatchPolicy.dispatch_by(len)._kwargs) == {"fn": len, "num_aicpus": 0}
    assert dict(DispatchPolicy.work_steal()._kwargs) == {}
    assert dict(TimingPolicy.batched(8)._kwargs) == {"n": 8}
    assert dict(TimingPolicy.interleaved(2)._kwargs) == {"streams": 2}
    assert dict(TimingPolicy.immediate._kwargs) == {}
    assert dict(Deps.explicit()._kwargs) == {}
    assert dict(TracePolicy.cycles()._kwargs) == {"cost_fn": None}


def test_aliases_are_read_only():
    w = task("k", [], [])
    for name in ("_kind", "_kwargs", "_name", "_params", "_schedule", "_dispatch_policy", "_stream_count",
                 "_stream_by_fn", "_timing_policy", "_task_graph_config", "_type_errors"):
        with pytest.raises(DSLUsageError):
            setattr(w, name, None)
    with pytest.raises(TypeError):
        w._kwargs["kernel"] = "other"  # type: ignore[index]
    w._params.append(("b", Dense[2]()))  # a new list each time: the workload keeps its own
    assert w._params == [] and w.schedule.params == ()
    for policy in (ReadyPolicy.fifo(), StartPolicy.threshold(3), DispatchPolicy.round_robin(2),
                   TimingPolicy.batched(2), Deps.hybrid()):
        for name in ("_kind", "_kwargs"):
            if hasattr(policy, name):
                with pytest.raises((AttributeError, dataclasses.FrozenInstanceError)):
                    setattr(policy, name, None)
        with pytest.raises(TypeError):
            policy._kwargs["n"] = 1  # type: ignore[index]
