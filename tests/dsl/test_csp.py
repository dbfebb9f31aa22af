"""CSP pipelines: real numerics in both API forms, ordering, slot backpressure, events, wiring checks, deadlocks."""
import time

import numpy as np
import pytest
from source_lines import here

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    Event,
    P,
    Pipeline,
    PipelineError,
    Process,
    PtortError,
    TaskWindow,
    TimingPolicy,
    connect,
    consume,
    for_each,
    process,
    query,
    record,
    replicate,
    send,
    synchronize,
    task,
    workload,
)
from ptort_lab.errors import DeadlockError
from ptort_lab.program import PinnedCosts


# -- the spec pipeline computes Y = float32(float16(X) * float16(X)) ------------------------------------------------
def spec_form_pipeline(k, d):
    """The spec README's form: Process(..).produces(..).body_func(lambda: [...]), send(ch, kernel[t](...))."""
    l2c = Channel[object](name="load_to_compute", depth=2)
    c2s = Channel[object](name="compute_to_store", depth=2)
    loader = (Process("loader")
              .produces(l2c)
              .body_func(lambda: [send(l2c, k.load[t](src=d.X[t], dst=d.T[t])) for t in range(d.n)]))
    computer = (Process("computer")
                .consumes(l2c)
                .produces(c2s)
                .body_func(lambda: consume(l2c, lambda t: send(c2s, k.compute[t](input_tile=d.T[t],
                                                                                 output_tile=d.U[t])))))
    storer = (Process("storer")
              .consumes(c2s)
              .body_func(lambda: consume(c2s, lambda t: k.store[t](src=d.U[t], dst=d.Y[t]))))
    return connect(loader, computer, storer)


def reference_form_pipeline(k, d):
    """The reference's form: process(..).body(for_each(...)), send(ch, task(k, [t], {...})), connect([..], [..])."""
    tiles = Dense[d.n]()
    l2c = Channel[object](name="load_to_compute", depth=2)
    c2s = Channel[object](name="compute_to_store", depth=2)
    loader = process("loader").produces(l2c).body(
        for_each(tiles, lambda t: send(l2c, task(k.load, [t], {"src": d.X[t], "dst": d.T[t]}))))
    computer = process("computer").consumes(l2c).produces(c2s).body(
        consume(l2c, lambda t: send(c2s, task(k.compute, [t], {"input_tile": d.T[t], "output_tile": d.U[t]}))))
    storer = process("storer").consumes(c2s).body(
        consume(c2s, lambda t: task(k.store, [t], {"src": d.U[t], "dst": d.Y[t]})))
    return connect([loader, computer, storer], [l2c, c2s])


@pytest.mark.parametrize("build", [spec_form_pipeline, reference_form_pipeline], ids=["spec", "reference"])
def test_pipeline_computes_f16_square_exactly(spec_kernels, spec_data, build):
    """Both pipeline forms compute Y = float32(float16(X) * float16(X)) for every tile, bit for bit."""
    pipeline = build(spec_kernels, spec_data)
    assert type(pipeline).__name__ == "Pipeline"
    program = pipeline.compile(cost_model=PinnedCosts())
    program.execute()
    program.synchronize()
    assert np.array_equal(spec_data.Y.data, spec_data.expected)
    assert not np.array_equal(spec_data.Y.data, spec_data.x * spec_data.x)  # the F16 rounding really happened
    assert len(program.tasks) == 24


@pytest.mark.parametrize("build", [spec_form_pipeline, reference_form_pipeline], ids=["spec", "reference"])
def test_pipeline_enumerates_24_tasks_process_by_process(spec_kernels, spec_data, build):
    """enumerate() on a pipeline lists 8 loads, then 8 computes, then 8 stores, with tile indices 0..7."""
    tasks = build(spec_kernels, spec_data).enumerate()
    assert [t.kernel for t in tasks] == ["load_kernel"] * 8 + ["compute_kernel"] * 8 + ["store_kernel"] * 8
    assert [t.params for t in tasks[:8]] == [[i] for i in range(8)]
    assert [t.id for t in tasks] == list(range(24))
    assert {t.process for t in tasks} == {"loader", "computer", "storer"}


def test_p_pipe_workload_computes_the_same_y(spec_kernels, spec_data):
    """`with P.pipe():` inside @workload builds one stage per statement and computes the same Y."""
    k, d = spec_kernels, spec_data
    l2c = Channel(name="load_to_compute", depth=2)
    c2s = Channel(name="compute_to_store", depth=2)

    @workload
    def piped():
        with P.pipe():
            for_each(Dense[d.n](), lambda t: send(l2c, k.load[t](src=d.X[t], dst=d.T[t])))
            consume(l2c, lambda t: send(c2s, k.compute[t](input_tile=d.T[t], output_tile=d.U[t])))
            consume(c2s, lambda t: k.store[t](src=d.U[t], dst=d.Y[t]))

    w = piped()
    assert type(w).__name__ == "Workload"
    assert len(w.enumerate()) == 24
    w.compile(cost_model=PinnedCosts()).execute()
    assert np.array_equal(d.Y.data, d.expected)


def data_parallel_twin(k, d):
    @workload
    def dp():
        for t in P(Dense[d.n]()):
            k.load[t](src=d.X[t], dst=d.T[t])
            k.compute[t](input_tile=d.T[t], output_tile=d.T[t])
            k.store[t](src=d.T[t], dst=d.Y[t])
    return dp()


@pytest.mark.parametrize("schedule", [
    lambda w: w,
    lambda w: w.dispatch(DispatchPolicy.round_robin(4)).streams(2).timing(TimingPolicy.immediate),
    lambda w: w.dispatch(DispatchPolicy.work_steal(3)),
    lambda w: w.dispatch(DispatchPolicy.affinity(lambda t: t.get("b"), 2)),
    lambda w: w.dispatch(DispatchPolicy.hash(lambda t: t.get("b"), 4)),
    lambda w: w.dispatch(DispatchPolicy.round_robin(2)).task_graph(window=TaskWindow(1)),
], ids=["default", "round_robin", "work_steal", "affinity", "hash", "window"])
def test_data_parallel_twin_gives_the_same_y(spec_kernels, spec_data, schedule):
    """The @workload twin (3 launches per tile) computes the same Y under every dispatch policy."""
    program = schedule(data_parallel_twin(spec_kernels, spec_data)).compile(cost_model=PinnedCosts())
    assert type(program).__name__ == "Program"
    program.execute()
    assert np.array_equal(spec_data.Y.data, spec_data.expected)
    assert program.stats().task_count == 24


def test_schedule_combinators_return_new_workloads(spec_kernels, spec_data):
    """dispatch/streams/timing return new Workloads and leave the original's schedule unchanged."""
    w = data_parallel_twin(spec_kernels, spec_data)
    w2 = w.dispatch(DispatchPolicy.round_robin(4))
    w3 = w2.streams(2)
    assert w2 is not w and w3 is not w2
    assert w._schedule.dispatch is None and w2._schedule.stream_count is None
    assert w3._schedule.dispatch.num_cores == 4 and w3._schedule.stream_count == 2


# -- ordering --------------------------------------------------------------------------------------------------
def test_consumer_sees_tokens_in_send_order(stages):
    """Tokens sent in the order 3,1,4,0,2 arrive at the consumer in that order."""
    order = [3, 1, 4, 0, 2]
    ch = Channel(name="ch", depth=2)
    prod = Process("prod").produces(ch).body_func(lambda: [send(ch, task(stages.a, [i], {}, cycles=1)) for i in order])
    cons = Process("cons").consumes(ch).body_func(lambda: consume(ch, lambda t: task(stages.b, [t], {}, cycles=5)))
    program = connect(prod, cons).compile(cost_model=PinnedCosts())
    program.execute()
    assert [s.index for s in program.trace().spans if s.process == "cons"] == order
    assert [t.params[0] for t in connect(prod, cons).enumerate() if t.process == "cons"] == order


def test_consumer_sees_plain_int_tokens_in_order(stages):
    """send(ch, value) with plain ints passes the ints through as the consumer's loop variable."""
    ch = Channel(name="ch", depth=1)
    prod = Process("prod").produces(ch).body_func(lambda: [send(ch, v) for v in (7, 5, 6)])
    cons = Process("cons").consumes(ch).body_func(lambda: consume(ch, lambda t: task(stages.b, [t], {}, cycles=1)))
    tasks = connect(prod, cons).enumerate()
    assert [t.params for t in tasks] == [[7], [5], [6]]


# -- backpressure: depth = buffer slots, pinned costs give hand-computable timelines ---------------------------------
def two_stage(stages, depth, n=3, producer_cycles=10, consumer_cycles=30):
    ch = Channel(name="ch", depth=depth)
    prod = process("prod").produces(ch).body(
        for_each(Dense[n](), lambda t: send(ch, task(stages.a, [t], {}, cycles=producer_cycles))))
    cons = process("cons").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {}, cycles=consumer_cycles)))
    program = connect([prod, cons], [ch]).compile(cost_model=PinnedCosts())
    program.execute()
    return program


def spans(program):
    return sorted((s.process, s.index, s.start, s.end) for s in program.trace().spans)


def test_depth_1_serialises_producer_and_consumer(stages):
    """Depth 1: the producer takes the only slot back when the consumer frees it, so nothing overlaps.

    prod i runs [40i, 40i+10); cons i runs [40i+10, 40i+40).
    """
    program = two_stage(stages, depth=1)
    assert spans(program) == [("cons", 0, 10, 40), ("cons", 1, 50, 80), ("cons", 2, 90, 120),
                              ("prod", 0, 0, 10), ("prod", 1, 40, 50), ("prod", 2, 80, 90)]
    assert program.stats().total_cycles == 120


def test_depth_1_channel_never_holds_two_items(stages):
    """A depth-1 channel's occupancy never exceeds 1, and is 1 exactly while an item is produced or consumed."""
    program = two_stage(stages, depth=1)
    trace = program.trace()
    assert trace.max_occupancy("ch") == 1
    assert trace.occupancy("ch") == [(0, 0), (0, 1), (40, 0), (40, 1), (80, 0), (80, 1), (120, 0)]


def test_depth_2_double_buffers(stages):
    """Depth 2: the producer runs one item ahead; item 2 waits for the slot item 0 frees at t=40.

    prod: [0,10) [10,20) [40,50); cons: [10,40) [40,70) [70,100).
    """
    program = two_stage(stages, depth=2)
    assert spans(program) == [("cons", 0, 10, 40), ("cons", 1, 40, 70), ("cons", 2, 70, 100),
                              ("prod", 0, 0, 10), ("prod", 1, 10, 20), ("prod", 2, 40, 50)]
    assert program.trace().max_occupancy("ch") == 2
    assert program.stats().total_cycles == 100


def test_deep_channel_lets_a_fast_producer_run_free(stages):
    """Depth >= n: the producer never waits; the consumer is the bottleneck (makespan 10 + 3*30)."""
    program = two_stage(stages, depth=3)
    assert [s for s in spans(program) if s[0] == "prod"] == [("prod", 0, 0, 10), ("prod", 1, 10, 20),
                                                             ("prod", 2, 20, 30)]
    assert program.stats().total_cycles == 100


def test_slow_producer_starves_the_consumer(stages):
    """With a slow producer (30) and fast consumer (10), the consumer waits for each token."""
    program = two_stage(stages, depth=2, producer_cycles=30, consumer_cycles=10)
    assert spans(program) == [("cons", 0, 30, 40), ("cons", 1, 60, 70), ("cons", 2, 90, 100),
                              ("prod", 0, 0, 30), ("prod", 1, 30, 60), ("prod", 2, 60, 90)]


def test_kernel_level_cycles_pin_the_cost():
    """@kernel(cycles=N) pins every launch to N cycles without task(..., cycles=)."""
    from ptort_lab import kernel

    @kernel(cycles=7)
    def slow():
        """Seven cycles per launch."""

    @kernel(cycles=3)
    def fast():
        """Three cycles per launch."""

    ch = Channel(name="ch", depth=1)
    a = Process("a").produces(ch).body_func(lambda: [send(ch, slow[t]()) for t in range(2)])
    b = Process("b").consumes(ch).body_func(lambda: consume(ch, lambda t: fast[t]()))
    program = connect(a, b).compile(cost_model=PinnedCosts())
    program.execute()
    assert sorted((s.process, s.index, s.start, s.end) for s in program.trace().spans) == [
        ("a", 0, 0, 7), ("a", 1, 10, 17), ("b", 0, 7, 10), ("b", 1, 17, 20)]


def test_span_fields_name_core_lane_and_process(stages):
    """Each span carries the process's core and lane, the kernel name and the tile index."""
    first = two_stage(stages, depth=1).trace().spans[0]
    assert (first.core, first.lane, first.name, first.index, first.process) == (0, "prod", "stage_a", 0, "prod")


def test_consume_ends_when_producer_finishes_and_channel_drains(stages):
    """The consumer's loop ends after the last token: it handles exactly n items, and its process finishes."""
    program = two_stage(stages, depth=2, n=5)
    trace = program.trace()
    assert [s.index for s in trace.spans if s.process == "cons"] == [0, 1, 2, 3, 4]
    assert trace.process_end["cons"] == program.stats().total_cycles


def test_three_stage_flow_shop_timeline(stages):
    """load 5 / square 20 / store 5 cycles, depth 2: the middle stage is the bottleneck, runs back to back."""
    l2c, c2s = Channel(name="l2c", depth=2), Channel(name="c2s", depth=2)
    loader = process("loader").produces(l2c).body(
        for_each(Dense[4](), lambda t: send(l2c, task(stages.a, [t], {}, cycles=5))))
    computer = process("computer").consumes(l2c).produces(c2s).body(
        consume(l2c, lambda t: send(c2s, task(stages.b, [t], {}, cycles=20))))
    storer = process("storer").consumes(c2s).body(consume(c2s, lambda t: task(stages.a, [t], {}, cycles=5)))
    program = connect([loader, computer, storer], [l2c, c2s]).compile(cost_model=PinnedCosts())
    program.execute()
    got = {(s.process, s.index): (s.start, s.end) for s in program.trace().spans}
    assert [got[("computer", i)] for i in range(4)] == [(5, 25), (25, 45), (45, 65), (65, 85)]
    assert [got[("storer", i)] for i in range(4)] == [(25, 30), (45, 50), (65, 70), (85, 90)]
    # the loader may take slot 3 only when computer frees slot 1 (item 0 done at 25), item 3 when item 1 frees (45)
    assert [got[("loader", i)] for i in range(4)] == [(0, 5), (5, 10), (25, 30), (45, 50)]
    assert program.stats().total_cycles == 90


# -- replicate ------------------------------------------------------------------------------------------------
def test_replicate_makes_independent_named_copies(stages):
    """replicate(p, 3) gives 3 distinct processes named p[0]..p[2] whose channel lists are separate objects."""
    ch = Channel(name="work", depth=1)
    worker = process("worker").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {}, cycles=1)))
    copies = replicate(worker, 3)
    assert [p.name for p in copies] == ["worker[0]", "worker[1]", "worker[2]"]
    assert len({id(p) for p in copies}) == 3 and all(p is not worker for p in copies)
    other = Channel(name="other", depth=1)
    copies[0].produces(other)
    assert list(copies[1].produces) == [] and list(worker.produces) == []
    assert list(copies[1].consumes) == [ch]


def test_replicated_workers_share_a_channel_and_each_item_runs_once(stages):
    """A producer feeding 2 replicated workers (depth 2): each item runs once, on the worker that was free.

    prod: [0,10) [10,20) [40,50) [50,60); worker[0]: items 0, 2 at [10,40) [50,80); worker[1]: 1, 3 at [20,50) [60,90).
    """
    ch = Channel(name="work", depth=2)
    prod = process("prod").produces(ch).body(
        for_each(Dense[4](), lambda t: send(ch, task(stages.a, [t], {}, cycles=10))))
    worker = process("worker").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {}, cycles=30)))
    program = connect([prod, replicate(worker, 2)], [ch]).compile(cost_model=PinnedCosts())
    program.execute()
    assert spans(program) == [("prod", 0, 0, 10), ("prod", 1, 10, 20), ("prod", 2, 40, 50), ("prod", 3, 50, 60),
                              ("worker[0]", 0, 10, 40), ("worker[0]", 2, 50, 80),
                              ("worker[1]", 1, 20, 50), ("worker[1]", 3, 60, 90)]


def test_replicate_needs_a_positive_count(stages):
    """replicate(p, 0) raises a ptort_lab ValueError."""
    p = process("w").body(for_each(Dense[1](), lambda t: task(stages.a, [t], {})))
    with pytest.raises(PtortError, match=r"replicate\('w', n\) needs n >= 1, got 0") as e:
        replicate(p, 0)
    assert isinstance(e.value, ValueError)


# -- events --------------------------------------------------------------------------------------------------
def test_host_event_record_query_synchronize():
    """A4: query False, record, query True, synchronize returns at once, query False again."""
    ev = Event(name="load_done")
    assert query(ev) is False
    record(ev)
    assert query(ev) is True
    assert synchronize(ev) is None
    assert query(ev) is False


def test_host_records_count(stages):
    """Two host records allow two synchronizes; the third raises."""
    ev = Event(name="twice")
    record(ev)
    record(ev)
    synchronize(ev)
    assert query(ev) is True
    synchronize(ev)
    with pytest.raises(PtortError):
        synchronize(ev)


@pytest.mark.timeout(5)
def test_host_synchronize_without_record_raises_at_once(where):
    """synchronize() on the host with nothing recorded raises a ptort_lab RuntimeError immediately."""
    import inspect
    ev = Event(name="never")
    started = time.perf_counter()
    with pytest.raises(PtortError, match="synchronize\\('never'\\) would wait forever") as e:
        line = inspect.currentframe().f_lineno + 1
        synchronize(ev)
    assert time.perf_counter() - started < 1.0
    assert isinstance(e.value, RuntimeError)
    msg = where(e, line)
    assert "record(event) first" in msg


def test_events_order_two_processes_in_simulated_time(stages):
    """B synchronizes on an event A records after a 10-cycle task: B's task starts at t=10."""
    ev = Event(name="go")
    a = Process("A").body_func(lambda: [task(stages.a, [0], {}, cycles=10), record(ev)])
    b = Process("B").body_func(lambda: [synchronize(ev), task(stages.b, [0], {}, cycles=5)])
    program = connect(a, b).compile(cost_model=PinnedCosts())
    program.execute()
    assert spans(program) == [("A", 0, 0, 10), ("B", 0, 10, 15)]


def test_event_signals_count_inside_processes(stages):
    """A records twice (after t=4 and t=8); B's two waits release its tasks at 4 and 8."""
    ev = Event(name="tick")
    a = Process("A").body_func(lambda: [task(stages.a, [0], {}, cycles=4), record(ev),
                                         task(stages.a, [1], {}, cycles=4), record(ev)])
    b = Process("B").body_func(lambda: [synchronize(ev), task(stages.b, [0], {}, cycles=1),
                                         synchronize(ev), task(stages.b, [1], {}, cycles=1)])
    program = connect(a, b).compile(cost_model=PinnedCosts())
    program.execute()
    assert [s for s in spans(program) if s[0] == "B"] == [("B", 0, 4, 5), ("B", 1, 8, 9)]


# -- connect() wiring checks: each names the process and the channel ------------------------------------------------
def producer(name, ch, stages, n=2):
    return Process(name).produces(ch).body_func(lambda: [send(ch, task(stages.a, [t], {})) for t in range(n)])


def consumer(name, ch, stages, declare=True):
    p = Process(name)
    if declare:
        p.consumes(ch)
    return p.body_func(lambda: consume(ch, lambda t: task(stages.b, [t], {})))


def test_connect_channel_without_producer(stages, where):
    """A consumed channel nobody produces is rejected, naming the channel and its consumer."""
    import inspect
    ch = Channel(name="orphan", depth=1)
    with pytest.raises(PipelineError) as e:
        line = inspect.currentframe().f_lineno + 1
        connect(consumer("cons", ch, stages))
    msg = where(e, line)
    assert "channel 'orphan' has no producer (process 'cons' consumes it)" in msg
    assert "Add a process with .produces(orphan)" in msg


def test_connect_channel_without_consumer(stages):
    """A produced channel nobody consumes is rejected, naming the channel and its producer."""
    ch = Channel(name="sink", depth=1)
    with pytest.raises(PipelineError, match=r"channel 'sink' has no consumer \(process 'prod' produces it\)"):
        connect(producer("prod", ch, stages))


def test_connect_channel_with_two_consumers(stages):
    """A channel consumed by two different processes is rejected, naming both and suggesting replicate()."""
    ch = Channel(name="shared", depth=1)
    with pytest.raises(PipelineError, match=r"channel 'shared' is consumed by two processes \('c1' and 'c2'\)") as e:
        connect(producer("p", ch, stages), consumer("c1", ch, stages), consumer("c2", ch, stages))
    assert "replicate()" in str(e.value)


def test_connect_undeclared_consume(stages):
    """A body that consumes a channel its process did not declare is rejected."""
    ch = Channel(name="g", depth=1)
    with pytest.raises(PipelineError, match=r"process 'cg' consumes channel 'g' it did not declare") as e:
        connect(producer("pg", ch, stages), consumer("cg", ch, stages, declare=False))
    assert "Add .consumes(g) to process 'cg'" in str(e.value)


def test_connect_undeclared_send(stages):
    """A body that sends to a channel its process did not declare is rejected."""
    ch = Channel(name="g", depth=1)
    sender = Process("pg").body_func(lambda: [send(ch, task(stages.a, [t], {})) for t in range(2)])
    with pytest.raises(PipelineError, match=r"process 'pg' sends to channel 'g' but does not declare it") as e:
        connect(sender, consumer("cg", ch, stages))
    assert "Add .produces(g) to process 'pg'" in str(e.value)


def test_connect_declared_consume_never_used(stages):
    """Declaring .consumes(ch) without a consume() in the body is rejected (its producer would block)."""
    ch = Channel(name="g", depth=1)
    idle = Process("idle").consumes(ch).body_func(lambda: task(stages.b, [0], {}))
    with pytest.raises(PipelineError, match=r"process 'idle' declares it consumes channel 'g' but its body never"):
        connect(producer("pg", ch, stages), idle)


def test_connect_duplicate_process_names(stages):
    """Two processes with one name are rejected, naming it."""
    ch = Channel(name="g", depth=1)
    with pytest.raises(PipelineError, match=r"two processes are named 'same'"):
        connect(producer("same", ch, stages), consumer("same", ch, stages))


def test_connect_duplicate_channel_names(stages):
    """Two distinct channels with one name are rejected, naming the channel and the processes using them."""
    h1, h2 = Channel(name="dup", depth=1), Channel(name="dup", depth=1)
    q1 = producer("q1", h1, stages)
    q2 = Process("q2").consumes(h1).produces(h2).body_func(
        lambda: consume(h1, lambda t: send(h2, task(stages.b, [t], {}))))
    q3 = consumer("q3", h2, stages)
    with pytest.raises(PipelineError, match=r"two different channels are named 'dup'") as e:
        connect(q1, q2, q3)
    assert "'q2'" in str(e.value)


def test_connect_zero_depth_cycle_names_processes_and_channels(stages):
    """A cycle A -> B -> A over two depth-0 channels is rejected, naming both processes and both channels."""
    z1, z2 = Channel(name="z1", depth=0), Channel(name="z2", depth=0)
    a = process("A").consumes(z1).produces(z2).body(consume(z1, lambda t: send(z2, task(stages.a, [t], {}))))
    b = process("B").consumes(z2).produces(z1).body(consume(z2, lambda t: send(z1, task(stages.b, [t], {}))))
    with pytest.raises(PipelineError, match="total depth 0") as e:
        connect([a, b], [z1, z2])
    msg = str(e.value)
    assert "A -> B -> A" in msg
    assert "'z2'" in msg and "'z1'" in msg


def test_connect_zero_depth_data_channel(stages):
    """A depth-0 data channel (outside a cycle) is rejected with the depth fix."""
    z = Channel(name="z0", depth=0)
    with pytest.raises(PipelineError, match=r"channel 'z0' has depth 0") as e:
        connect(producer("a0", z, stages), consumer("b0", z, stages))
    assert "Channel(name='z0', depth=1)" in str(e.value)


def test_connect_channel_missing_from_list(stages):
    """connect([procs], [channels]) rejects a used channel missing from the list, naming it and its process."""
    a, b = Channel(name="a", depth=1), Channel(name="b", depth=1)
    p1, p2 = producer("p1", a, stages), consumer("p2", a, stages)
    p3, p4 = producer("p3", b, stages), consumer("p4", b, stages)
    with pytest.raises(PipelineError, match=r"channel 'b' is used by process 'p3' but is missing"):
        connect([p1, p2, p3, p4], [a])


def test_connect_rejects_non_processes():
    """connect("loader") says it takes Process objects."""
    with pytest.raises(PipelineError, match=r"connect\(\) takes Process objects, got str 'loader'"):
        connect("loader")


def test_connect_process_without_body():
    """A process with no body is rejected, naming it and the fix."""
    with pytest.raises(PipelineError, match=r"process 'empty' has no body") as e:
        connect(Process("empty"))
    assert ".body_func(fn)" in str(e.value)


def test_channel_negative_depth():
    """Channel(depth=-1) raises a ptort_lab ValueError naming the channel."""
    with pytest.raises(PtortError, match=r"Channel 'c' depth must be >= 0, got -1") as e:
        Channel(name="c", depth=-1)
    assert isinstance(e.value, ValueError)


def test_pipeline_is_a_pipeline_with_its_processes_and_channels(stages):
    """connect() returns a Pipeline listing the processes in order and every channel."""
    ch = Channel(name="ch", depth=1)
    p = connect(producer("p", ch, stages), consumer("c", ch, stages))
    assert isinstance(p, Pipeline)
    assert [q.name for q in p.processes] == ["p", "c"]
    assert list(p.channels) == [ch]


# -- deadlock detection ------------------------------------------------------------------------------------------
def mutual_wait(stages):
    c1, c2 = Channel(name="c1", depth=1), Channel(name="c2", depth=1)
    a = process("A").consumes(c1).produces(c2).body(consume(c1, lambda t: send(c2, task(stages.a, [t], {}))))
    b = process("B").consumes(c2).produces(c1).body(consume(c2, lambda t: send(c1, task(stages.b, [t], {}))))
    return connect([a, b], [c1, c2])


@pytest.mark.timeout(5)
def test_mutual_wait_deadlock_is_reported_quickly(stages):
    """Two processes each consuming the other's channel raise DeadlockError within a second, listing both."""
    program = mutual_wait(stages).compile(cost_model=PinnedCosts())
    started = time.perf_counter()
    with pytest.raises(DeadlockError) as e:
        program.execute()
    assert time.perf_counter() - started < 1.0
    msg = str(e.value)
    assert "'A' waits to consume from 'c1'" in msg
    assert "'B' waits to consume from 'c2'" in msg
    assert "'c1' 0/1 slots in use" in msg and "'c2' 0/1 slots in use" in msg
    assert isinstance(e.value, RuntimeError) and isinstance(e.value, PtortError)


@pytest.mark.timeout(10)
def test_a_big_deadlock_names_the_first_twelve_and_keeps_them_all(stages):
    """Eight mutual-wait pairs (16 processes, 16 channels): the message names 12 of each and counts the rest, so a
    24-core run's deadlock stays readable; ``waits`` and ``channels`` on the error hold every one."""
    procs, chans = [], []
    for i in range(8):
        c1, c2 = Channel(name=f"c1_{i}", depth=1), Channel(name=f"c2_{i}", depth=1)
        procs += [process(f"A{i}").consumes(c1).produces(c2).body(consume(c1, lambda t, c2=c2: send(c2, task(
                      stages.a, [t], {})))),
                  process(f"B{i}").consumes(c2).produces(c1).body(consume(c2, lambda t, c1=c1: send(c1, task(
                      stages.b, [t], {}))))]
        b_line = here() - 2  # (B's consume: its line, as each wait names it)
        chans += [c1, c2]
    with pytest.raises(DeadlockError) as e:
        connect(procs, chans).compile(cost_model=PinnedCosts()).execute()
    msg = str(e.value)
    assert msg.count(" waits to consume from ") == 12
    assert "... and 4 more processes blocked (all of them in the error's .waits / .channels)" in msg
    assert "... and 4 more channels" in msg
    assert len(e.value.waits) == 16 and len(e.value.channels) == 16
    assert f"'B7' waits to consume from 'c2_7' at test_csp.py:{b_line} (since t=0)" in e.value.waits


@pytest.mark.timeout(5)
def test_mutual_wait_deadlock_in_enumerate(stages):
    """enumerate() of the same pipeline raises DeadlockError listing both waits and the channel fills."""
    started = time.perf_counter()
    with pytest.raises(DeadlockError) as e:
        mutual_wait(stages).enumerate()
    assert time.perf_counter() - started < 1.0
    msg = str(e.value)
    assert "'A' waits to consume from 'c1'" in msg and "'B' waits to consume from 'c2'" in msg
    assert "'c1'" in msg.split("Channels:")[1] and "'c2'" in msg.split("Channels:")[1]


@pytest.mark.timeout(5)
def test_synchronize_on_an_event_recorded_only_after_it_deadlocks(stages):
    """A process that synchronizes on an event whose only record comes after that very wait raises DeadlockError
    naming the event (one that no process records at all is refused by connect(): test_api_bad_input_r4.py)."""
    ev = Event(name="never")
    c = Process("C").body_func(lambda: [synchronize(ev), task(stages.b, [0], {}, cycles=5), record(ev)])
    started = time.perf_counter()
    with pytest.raises(DeadlockError, match=r"'C' waits to synchronize on 'never'"):
        connect(c).compile(cost_model=PinnedCosts()).execute()
    assert time.perf_counter() - started < 1.0


@pytest.mark.timeout(5)
def test_deadlock_mid_run_reports_time_and_full_channel(stages):
    """A consumer stuck on an event while its producer waits for a slot: both listed, the channel shown 1/1 full."""
    ev = Event(name="never")
    ch = Channel(name="ch", depth=1)
    p1 = Process("P1").produces(ch).body_func(lambda: [send(ch, task(stages.a, [t], {}, cycles=2)) for t in range(3)])
    p2 = Process("P2").consumes(ch).body_func(
        lambda: consume(ch, lambda t: [synchronize(ev), task(stages.b, [t], {}, cycles=3)]))
    late = Process("R").body_func(lambda: [synchronize(ev), record(ev)])  # records it only once it has it
    with pytest.raises(DeadlockError) as e:
        connect(p1, p2, late).compile(cost_model=PinnedCosts()).execute()
    msg = str(e.value)
    assert msg.startswith("Deadlock at t=2 cycles")
    assert "'P1' waits to send to 'ch' (no free slot)" in msg
    assert "'P2' waits to synchronize on 'never'" in msg
    assert "'ch' 1/1 slots in use, 0 token(s) waiting, 1 held by 'P2' (taken items, each freed when its consumer " \
           "takes its next)." in msg


def test_deadlock_names_who_holds_the_slots_only_when_it_knows(stages):
    """Slots a send body took before its push are not a consumer's: with such a body open the message does not
    guess. Here 'P1' takes a slot of 'ch' (send of a body that waits on an event) and blocks inside it."""
    ev = Event(name="never")
    ch = Channel(name="ch", depth=1)
    from ptort_lab import sequential
    p1 = Process("P1").produces(ch).body_func(
        lambda: send(ch, sequential(synchronize(ev), task(stages.a, [0], {}, cycles=2)), token=0))
    p2 = Process("P2").consumes(ch).body_func(lambda: consume(ch, lambda t: task(stages.b, [t], {}, cycles=3)))
    late = Process("R").body_func(lambda: [synchronize(ev), record(ev)])  # records it only once it has it
    with pytest.raises(DeadlockError) as e:
        connect(p1, p2, late).compile(cost_model=PinnedCosts()).execute()
    msg = str(e.value)
    assert "'ch' 1/1 slots in use, 0 token(s) waiting." in msg and "held by" not in msg


# -- arbitration in simulated time: several producers on one channel, several waiters on one event ------------------
def test_two_producers_share_slots_in_time_order(stages):
    """Two producers on one depth-2 channel each take a slot at t=0; tokens reach the consumer in time order.

    p1 (10 cycles): [0,10) [11,21) [22,32); p2 (15 cycles): [0,15) [16,31); c (1 cycle) takes 0,10,1,11,2
    at 10, 15, 21, 31, 32 - each slot comes back 1 cycle after its token arrived.
    """
    ch = Channel(name="ch", depth=2)
    p1 = Process("p1").produces(ch).body_func(lambda: [send(ch, task(stages.a, [t], {}, cycles=10)) for t in range(3)])
    p2 = Process("p2").produces(ch).body_func(
        lambda: [send(ch, task(stages.a, [t + 10], {}, cycles=15)) for t in range(2)])
    c = Process("c").consumes(ch).body_func(lambda: consume(ch, lambda t: task(stages.b, [t], {}, cycles=1)))
    program = connect(p1, p2, c).compile(cost_model=PinnedCosts())
    program.execute()
    assert spans(program) == [("c", 0, 10, 11), ("c", 1, 21, 22), ("c", 2, 32, 33), ("c", 10, 15, 16),
                              ("c", 11, 31, 32), ("p1", 0, 0, 10), ("p1", 1, 11, 21), ("p1", 2, 22, 32),
                              ("p2", 10, 0, 15), ("p2", 11, 16, 31)]
    assert [s.index for s in program.trace().spans if s.process == "c"] == [0, 10, 1, 11, 2]


def test_event_signals_go_to_waiters_in_time_order(stages):
    """A records at 10 and 20; C waits from t=1 and B from t=15, so C runs at 10 and B at 20."""
    ev = Event(name="go")
    a = Process("A").body_func(lambda: [task(stages.a, [0], {}, cycles=10), record(ev),
                                         task(stages.a, [1], {}, cycles=10), record(ev)])
    b = Process("B").body_func(lambda: [task(stages.b, [0], {}, cycles=15), synchronize(ev),
                                         task(stages.b, [1], {}, cycles=1)])
    c = Process("C").body_func(lambda: [task(stages.b, [0], {}, cycles=1), synchronize(ev),
                                         task(stages.b, [2], {}, cycles=1)])
    program = connect(a, b, c).compile(cost_model=PinnedCosts())
    program.execute()
    assert spans(program) == [("A", 0, 0, 10), ("A", 1, 10, 20), ("B", 0, 0, 15), ("B", 1, 20, 21),
                              ("C", 0, 0, 1), ("C", 2, 10, 11)]


@pytest.mark.parametrize("depth, workers", [(1, 1), (1, 3), (3, 2)])
def test_pipeline_with_replicated_computers_computes_the_same_y(spec_kernels, spec_data, depth, workers):
    """Replicating the computer into a worker pool (any depth) still computes every tile exactly once, correctly."""
    k, d = spec_kernels, spec_data
    l2c, c2s = Channel(name="l2c", depth=depth), Channel(name="c2s", depth=depth)
    loader = process("loader").produces(l2c).body(
        for_each(Dense[d.n](), lambda t: send(l2c, task(k.load, [t], {"src": d.X[t], "dst": d.T[t]}))))
    computer = process("computer").consumes(l2c).produces(c2s).body(
        consume(l2c, lambda t: send(c2s, task(k.compute, [t], {"input_tile": d.T[t], "output_tile": d.U[t]}))))
    storer = process("storer").consumes(c2s).body(
        consume(c2s, lambda t: task(k.store, [t], {"src": d.U[t], "dst": d.Y[t]})))
    program = connect([loader, replicate(computer, workers), storer], [l2c, c2s]).compile(cost_model=PinnedCosts())
    program.execute()
    assert np.array_equal(d.Y.data, d.expected)
    computed = sorted(t.params[0] for t in program.tasks if t.kernel == "compute_kernel")
    assert computed == list(range(d.n))


def test_spec_pipeline_with_depth_1_channels_never_holds_two_tiles(spec_kernels, spec_data):
    """The spec pipeline with depth-1 channels computes the same Y and neither channel ever holds 2 tiles."""
    k, d = spec_kernels, spec_data
    cl, cc, cs = 5, 20, 5
    l2c, c2s = Channel(name="load_to_compute", depth=1), Channel(name="compute_to_store", depth=1)
    loader = process("loader").produces(l2c).body(
        for_each(Dense[d.n](), lambda t: send(l2c, task(k.load, [t], {"src": d.X[t], "dst": d.T[t]}, cycles=cl))))
    computer = process("computer").consumes(l2c).produces(c2s).body(consume(l2c, lambda t: send(
        c2s, task(k.compute, [t], {"input_tile": d.T[t], "output_tile": d.U[t]}, cycles=cc))))
    storer = process("storer").consumes(c2s).body(
        consume(c2s, lambda t: task(k.store, [t], {"src": d.U[t], "dst": d.Y[t]}, cycles=cs)))
    program = connect([loader, computer, storer], [l2c, c2s]).compile(cost_model=PinnedCosts())
    program.execute()
    assert np.array_equal(d.Y.data, d.expected)
    trace = program.trace()
    assert trace.max_occupancy("load_to_compute") == 1
    assert trace.max_occupancy("compute_to_store") == 1
    # the computer frees its input slot only after its send, and that send waits for the storer to free the
    # output slot: computer i starts at 5 + 25 i, so the makespan is 5 + 8 * 25 = 205
    assert [s.start for s in trace.spans if s.process == "computer"] == [5 + 25 * i for i in range(d.n)]
    assert program.stats().total_cycles == cl + d.n * (cc + cs)


def test_zero_cost_occupancy_stays_within_zero_and_depth(stages):
    """With the default zero costs, a depth-1 channel's occupancy samples stay within 0..1 and end at 0."""
    ch = Channel(name="ch", depth=1)
    a = process("a").produces(ch).body(for_each(Dense[3](), lambda t: send(ch, task(stages.a, [t], {}))))
    b = process("b").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {})))
    program = connect([a, b], [ch]).compile(cost_model=PinnedCosts())
    program.execute()
    levels = [level for _, level in program.trace().occupancy("ch")]
    assert all(0 <= level <= 1 for level in levels), levels
    assert levels[-1] == 0


# -- the spec's literal send(ch, kernel(...)): a send without an axis passes 0, 1, 2, ... (issue 10) ---------------
def no_axis_pipeline(k, d, form):
    """The spec README's `send(channel, kernel(...))`: tasks launched without axes; or `task(k, [], {...})`."""
    l2c = Channel[object](name="load_to_compute", depth=2)
    c2s = Channel[object](name="compute_to_store", depth=2)
    if form == "kernel":
        def load(t):
            return k.load(src=d.X[t], dst=d.T[t])

        def compute(t):
            return k.compute(input_tile=d.T[t], output_tile=d.U[t])

        def store(t):
            return k.store(src=d.U[t], dst=d.Y[t])
    else:
        def load(t):
            return task(k.load, [], {"src": d.X[t], "dst": d.T[t]})

        def compute(t):
            return task(k.compute, [], {"input_tile": d.T[t], "output_tile": d.U[t]})

        def store(t):
            return task(k.store, [], {"src": d.U[t], "dst": d.Y[t]})
    loader = Process("loader").produces(l2c).body_func(lambda: [send(l2c, load(t)) for t in range(d.n)])
    computer = Process("computer").consumes(l2c).produces(c2s).body_func(
        lambda: consume(l2c, lambda t: send(c2s, compute(t))))
    storer = Process("storer").consumes(c2s).body_func(lambda: consume(c2s, lambda t: store(t)))
    return connect(loader, computer, storer)


@pytest.mark.parametrize("form", ["kernel", "task"])
def test_spec_send_of_a_task_without_axes_passes_the_item_index(spec_kernels, spec_data, form):
    """The loader's sends carry no axis, so tokens 0..7 travel in send order: every tile is squared exactly (the
    token used to be None and the consumer failed)."""
    program = no_axis_pipeline(spec_kernels, spec_data, form).compile(cost_model=PinnedCosts()).execute()
    assert np.array_equal(spec_data.Y.data, spec_data.expected)
    storer = [t for t in program.tasks if t.process == "storer"]
    assert [t.bindings["t"] for t in storer] == list(range(spec_data.n))


def test_axis_less_tokens_count_per_producer_and_channel(stages):
    """Each producer numbers its axis-less sends to each channel from 0; sends with an axis keep their value and do
    not count. p: [a, 7 (axis), b] -> 0, 7, 1; q: [c] -> 0. enumerate() and execute() agree."""
    ch = Channel(name="ch", depth=4)
    p = process("p").produces(ch).body_func(lambda: [
        send(ch, task(stages.a, [], {}, cycles=1)), send(ch, task(stages.a, [7], {}, cycles=1)),
        send(ch, task(stages.a, [], {}, cycles=1))])
    q = process("q").produces(ch).body_func(lambda: [send(ch, task(stages.a, [], {}, cycles=5))])
    c = process("c").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {}, cycles=1)))
    pipe = connect(p, q, c)
    program = pipe.compile(cost_model=PinnedCosts()).execute()
    assert [s.index for s in sorted(program.trace().spans, key=lambda s: s.start) if s.process == "c"] == [0, 7, 1, 0]
    assert sorted(t.params[0] for t in pipe.enumerate() if t.process == "c") == [0, 0, 1, 7]


def test_a_body_send_without_token_passes_the_index_too(stages):
    """send(ch, body) with no token= passes 0, 1, ... (it used to pass None)."""
    ch = Channel(name="ch", depth=1)
    p = process("p").produces(ch).body(for_each(Dense[3](), lambda t: send(ch, P_body(stages, t))))
    c = process("c").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {})))
    assert [t.params for t in connect(p, c).enumerate() if t.process == "c"] == [[0], [1], [2]]


def P_body(stages, t):
    from ptort_lab import sequential
    return sequential(task(stages.a, [t], {}), task(stages.a, [t], {}))


# -- events follow the channel latency rule (issue 10) ---------------------------------------------------------------
def record_then_wait(stages):
    ev = Event(name="go")
    a = Process("A").body_func(lambda: [task(stages.a, [0], {}, cycles=10), record(ev)])
    b = Process("B").body_func(lambda: [synchronize(ev), task(stages.b, [0], {}, cycles=5)])
    return connect(a, b)


@pytest.mark.parametrize("placement, start", [(None, 110), ("shared", 10), ({"A": 3, "B": 3}, 10),
                                              ({"A": 0, "B": 1}, 110)])
def test_event_hop_costs_what_a_channel_between_the_same_processes_costs(stages, placement, start):
    """A records at 10; with a 100-cycle channel latency B starts at 110 when the two are on different cores and at
    10 when they share a core (a wait after a record used to pay the hop even there)."""
    program = record_then_wait(stages).compile(cost_model=PinnedCosts(), channel_latency_cycles=100,
                                                placement=placement).execute()
    assert spans(program) == [("A", 0, 0, 10), ("B", 0, start, start + 5)]


def test_event_between_cube_and_vector_on_one_core_pays_the_hop():
    """On one core the AIC and the AIVs share nothing on chip, so an event from a cube-only process to a vector-only
    one pays the channel latency, as a channel between them does; between two vector processes it costs none."""
    from ptort_lab import DType, In, NpuCostModel, Out, Tensor, Tile, kernel, tl
    from ptort_lab.sim.machine import ascend_910b
    F16, F32 = DType.F16, DType.F32

    @kernel
    def scores(q: In[Tile[64, 64, F16]], k: In[Tile[64, 64, F16]], s: Out[Tile[64, 64, F32]]):
        tl.store(s, tl.matmul(tl.load(q), tl.load(k)))

    @kernel
    def double(s: In[Tile[64, 64, F32]], y: Out[Tile[64, 64, F32]]):
        x = tl.load(s)
        tl.store(y, tl.add(x, x))

    Q, K = Tensor(shape=(1, 64, 64), dtype=F16), Tensor(shape=(1, 64, 64), dtype=F16)
    S, Y, Z = (Tensor(shape=(1, 64, 64), dtype=F32) for _ in range(3))
    gaps = {}
    for first in ("cube", "vector"):
        ev = Event(name="ready")

        def work(first=first):
            if first == "cube":
                return task(scores, [0], {"q": Q[0], "k": K[0], "s": S[0]})
            return task(double, [0], {"s": S[0], "y": Z[0]})

        a = Process("a").body_func(lambda ev=ev: [work(), record(ev)])
        b = Process("b").body_func(lambda ev=ev: [synchronize(ev), task(double, [0], {"s": S[0], "y": Y[0]})])
        program = connect(a, b).place("shared").compile(cost_model=NpuCostModel(), channel_latency_cycles=1000,
                                                        compute_values=False).execute()
        a_end = max(s.end for s in program.trace().spans if s.process == "a")
        b_start = min(s.start for s in program.trace().spans if s.process == "b")
        gaps[first] = b_start - a_end
    # Both first tasks end with a GM store posted into L2 (NPU_MODEL §4.1, memory.py): its pipe lets go 48 cycles
    # (the issue cost, L2 write latency / 2) after its last byte, and b may read it only once it is visible, 96
    # after that byte: 48 cycles after a's last span. The cube -> vector event then pays the 1000-cycle hop on top;
    # vector -> vector on one AIV pays none.
    visible_after_pipe = ascend_910b.l2_write_latency_cycles - ascend_910b.ub_to_gm.fixed_cycles
    assert visible_after_pipe == ascend_910b.l2_write_latency_cycles - ascend_910b.l0c_to_gm.fixed_cycles == 48
    assert gaps == {"cube": 1000 + 48, "vector": 48}


def test_event_with_two_recorders_releases_signals_in_time_order(stages):
    """R1 records at 30, R2 at 10 (latency 5): W's first wait ends at 15, its second at 35."""
    ev = Event(name="tick")
    r1 = Process("R1").body_func(lambda: [task(stages.a, [1], {}, cycles=30), record(ev)])
    r2 = Process("R2").body_func(lambda: [task(stages.a, [2], {}, cycles=10), record(ev)])
    w = Process("W").body_func(lambda: [synchronize(ev), task(stages.b, [1], {}, cycles=1),
                                        synchronize(ev), task(stages.b, [2], {}, cycles=1)])
    program = connect(r1, r2, w).compile(cost_model=PinnedCosts(), channel_latency_cycles=5).execute()
    assert [s for s in spans(program) if s[0] == "W"] == [("W", 1, 15, 16), ("W", 2, 35, 36)]


def test_one_event_in_two_pipelines_starts_each_run_with_no_signals(stages):
    """A pipeline event's signals live inside one run: running the same program twice, or another pipeline that
    waits on the event, gives the same timeline each time (nothing left over from an earlier run)."""
    ev = Event(name="go")
    a = Process("A").body_func(lambda: [task(stages.a, [0], {}, cycles=10), record(ev), record(ev)])
    b = Process("B").body_func(lambda: [synchronize(ev), task(stages.b, [0], {}, cycles=5)])
    program = connect(a, b).compile(cost_model=PinnedCosts())
    first, again = spans(program.execute()), spans(program.execute())
    assert first == again == [("A", 0, 0, 10), ("B", 0, 10, 15)]
    c = Process("C").body_func(lambda: [synchronize(ev), task(stages.b, [1], {}, cycles=5)])
    with pytest.raises(PipelineError, match="'C' synchronizes on Event 'go', but no process of this pipeline "
                                            "records it"):  # A's records of the other pipeline do not carry over
        connect(c)
