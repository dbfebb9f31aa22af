"""Join and split (issue 12, C): ``consume([a, b], lambda ta, tb: ...)`` pairs the k-th items of its channels and
frees both slots after the body; a process that sends to two channels feeds two consumers (e.g. the two AIVs).
Values against numpy, timelines by hand (pinned costs and the NPU model), and every misuse refused."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import Dense, DType, In, Out, Tensor, Tile, for_each, kernel, task, tl
from ptort_lab.csp import Channel, connect, consume, process, send
from ptort_lab.dsl.tree import NodeKind, Workload
from ptort_lab.errors import DSLUsageError, PipelineError, PtortTypeError
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.machine import ascend_910b
from ptort_lab.sim.runner import PinnedCosts, RunOptions, simulate

F32 = DType.F32
M = ascend_910b
TILE = Tile[64, 64, F32]


@kernel
def scale2(src: In[TILE], dst: Out[TILE]):
    tl.store(dst, tl.mul(tl.load(src), 2.0))


@kernel
def scale3(src: In[TILE], dst: Out[TILE]):
    tl.store(dst, tl.mul(tl.load(src), 3.0))


@kernel
def combine2(x: In[TILE], y: In[TILE], out: Out[TILE]):
    tl.store(out, tl.add(tl.load(x), tl.load(y)))


def join_pipeline(n_a: int, n_b: int, cycles: tuple[int, int, int] | None = None, depth: int = 2):
    """a sends A[t] * 2 and b sends B[t] * 3 as tiles; j joins them into Y[t] = 2 A[t] + 3 B[t]."""
    rng = np.random.default_rng(0)
    a, b = rng.random((max(n_a, n_b), 64, 64), dtype=np.float32), rng.random((max(n_a, n_b), 64, 64),
                                                                             dtype=np.float32)
    A, B, Y = Tensor(data=a), Tensor(data=b), Tensor(shape=a.shape, dtype=F32)
    ca, cb = Channel("ca", depth=depth, tile=TILE), Channel("cb", depth=depth, tile=TILE)
    ka, kb, kj = cycles if cycles is not None else (None, None, None)
    pa = process("a").produces(ca).body(for_each(Dense[n_a](), lambda t: send(
        ca, task(scale2, [t], {"src": A[t], "dst": ca.item}, cycles=ka))))
    pb = process("b").produces(cb).body(for_each(Dense[n_b](), lambda t: send(
        cb, task(scale3, [t], {"src": B[t], "dst": cb.item}, cycles=kb))))
    pj = process("j").consumes(ca, cb).body(consume([ca, cb], lambda ta, tb: task(
        combine2, [ta], {"x": ca.item, "y": cb.item, "out": Y[ta]}, cycles=kj)))
    return connect(pa, pb, pj), a, b, Y


def test_a_join_pairs_the_kth_items_of_its_channels():
    """On the NPU model, a on AIV0 (its channel stays in that UB) and b on AIV1 (its channel is a GM ring): the
    joiner gets 2 A[t] + 3 B[t] for every t, and its body sees both items."""
    n = 5
    pipe, a, b, Y = join_pipeline(n, n)
    prog = pipe.compile(placement={"a": 0, "b": (0, 1), "j": 0})
    prog.execute()
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    np.testing.assert_array_equal(Y.data, a32 * np.float32(2) + b32 * np.float32(3))
    loads = [s for s in prog.trace().spans if s.process == "j" and s.name == "load"]
    assert [s.index for s in loads] == list(range(n))  # only cb's item is loaded (from the ring); ca's is in UB
    assert all(s.bytes == 64 * 64 * 4 and s.lane == "AIV0.MTE2" for s in loads)


def test_a_join_waits_for_its_slower_channel_and_throttles_the_faster_one():
    """Pinned costs a 100, b 300, j 50 per item, depth 2, no latency. j starts item k when both k-th items are there:
    at b's finish 300 (k + 1). a fills its two slots, then waits for j to free one (a's item k >= 2 starts when j
    ends item k - 2, at 300 (k - 1) + 50). Makespan 300 n + 50."""
    n = 5
    pipe, a, b, Y = join_pipeline(n, n, cycles=(100, 300, 50))
    run = simulate(pipe, PinnedCosts(), RunOptions())
    np.testing.assert_array_equal(Y.data, a * np.float32(2) + b * np.float32(3))

    def starts(p):
        return [s.start for s in run.trace.spans if s.process == p]

    assert starts("j") == [300 * (k + 1) for k in range(n)]
    assert starts("b") == [300 * k for k in range(n)]
    assert starts("a") == [0, 100] + [300 * (k - 1) + 50 for k in range(2, n)]
    assert run.trace.makespan == 300 * n + 50
    stalls = [(s.reason, s.end - s.start) for s in run.trace.stalls if s.process == "a"]
    assert stalls == [("backpressure from 'ca'", 150)] + [("backpressure from 'ca'", 200)] * (n - 3)


def test_a_split_feeds_two_consumers_and_the_slower_half_sets_the_pace():
    """Pinned costs: p sends each item's two halves (100 cycles per send) to c0 and c1 (depth 1); q0 takes 250 per
    item, q1 50. Worked by hand: p's send to c0 waits for q0 to free its slot (150 cycles per item from item 1 on),
    q1 starves between items, and the period is 350 = 100 + 250."""
    n = 4
    x = np.random.default_rng(1).random((n, 64, 64), dtype=np.float32)
    X, Y0, Y1 = Tensor(data=x), Tensor(shape=x.shape, dtype=F32), Tensor(shape=x.shape, dtype=F32)
    c0, c1 = Channel("c0", depth=1, tile=TILE), Channel("c1", depth=1, tile=TILE)
    p = process("p").produces(c0, c1).body(for_each(Dense[n](), lambda t: [
        send(c0, task(scale2, [t], {"src": X[t], "dst": c0.item}, cycles=100)),
        send(c1, task(scale3, [t], {"src": X[t], "dst": c1.item}, cycles=100))]))
    q0 = process("q0").consumes(c0).body(consume(c0, lambda t: task(scale2, [t], {"src": c0.item, "dst": Y0[t]},
                                                                    cycles=250)))
    q1 = process("q1").consumes(c1).body(consume(c1, lambda t: task(scale3, [t], {"src": c1.item, "dst": Y1[t]},
                                                                    cycles=50)))
    run = simulate(connect(p, q0, q1), PinnedCosts(), RunOptions())
    np.testing.assert_array_equal(Y0.data, x * np.float32(2) * np.float32(2))
    np.testing.assert_array_equal(Y1.data, x * np.float32(3) * np.float32(3))

    def spans(proc):
        return [(s.start, s.end) for s in run.trace.spans if s.process == proc]

    assert spans("p") == [(0, 100), (100, 200)] + [(350 * k + d, 350 * k + d + 100) for k in range(1, n)
                                                    for d in (0, 100)]
    assert spans("q0") == [(100, 350)] + [(350 * k + 100, 350 * k + 350) for k in range(1, n)]
    assert spans("q1") == [(200, 250)] + [(350 * k + 200, 350 * k + 250) for k in range(1, n)]
    assert run.trace.makespan == 350 * n
    assert [(s.reason, s.end - s.start) for s in run.trace.stalls if s.process == "p"] == \
        [("backpressure from 'c0'", 150)] * (n - 1)


@kernel
def drain(src: In[TILE], dst: Out[TILE]):
    tl.store(dst, tl.mul(tl.load(src), 1.0))


def test_a_split_over_the_two_vector_units_runs_both_halves_at_once():
    """NPU model: p (AIV0) sends one tile to q0 on AIV0 (slots in that UB: no load) and one to q1 on AIV1 (a GM ring:
    one write, one L2-hit read after the hop). Both halves run on their own AIV's pipes, overlapping in time."""
    x = np.random.default_rng(2).random((2, 64, 64), dtype=np.float32)
    X, Y0, Y1 = Tensor(data=x), Tensor(shape=x.shape, dtype=F32), Tensor(shape=x.shape, dtype=F32)
    c0, c1 = Channel("c0", depth=2, tile=TILE), Channel("c1", depth=2, tile=TILE)

    @kernel
    def produce(src: In[TILE], a: Out[TILE]):
        tl.store(a, tl.exp(tl.load(src)))

    p = process("p").produces(c0, c1).body(for_each(Dense[2](), lambda t: [
        send(c0, produce[t](src=X[t], a=c0.item)), send(c1, produce[t](src=X[t], a=c1.item))]))
    q0 = process("q0").consumes(c0).body(consume(c0, lambda t: drain[t](src=c0.item, dst=Y0[t])))
    q1 = process("q1").consumes(c1).body(consume(c1, lambda t: drain[t](src=c1.item, dst=Y1[t])))
    run = simulate(connect(p, q0, q1), NpuCostModel(), RunOptions(
        channel_latency_cycles=M.channel_latency_cycles, placement={"p": 0, "q0": 0, "q1": (0, 1)}))
    np.testing.assert_array_equal(Y0.data, np.exp(x))
    np.testing.assert_array_equal(Y1.data, np.exp(x))
    by = {(s.process, s.name, s.index): s for s in run.trace.spans}
    assert ("q0", "load", 0) not in by  # c0's item is already in AIV0's UB
    # the L2-hit read holds MTE2 for 16384 B at the 128 B/cycle port + the 118 issue cost (memory.py)
    hit = -(-64 * 64 * 4 // M.l2_port_bytes_per_cycle) + M.gm_to_ub.fixed_cycles
    sent = max(s.end for s in run.trace.spans if s.process == "p" and s.task_id == 1)  # p's send of item 0 to c1
    # the item is visible once the posted ring write is in L2: 96 after its last byte, 48 after MTE3 let go
    seen = sent + M.l2_write_latency_cycles - M.ub_to_gm.fixed_cycles
    q1_load = by[("q1", "load", 0)]
    assert (q1_load.lane, q1_load.start, q1_load.end) == ("AIV1.MTE2", seen + M.channel_latency_cycles,
                                                          seen + M.channel_latency_cycles + hit)
    q0_mul, q1_mul = by[("q0", "mul", 1)], by[("q1", "mul", 0)]
    assert q0_mul.lane == "AIV0.V" and q1_mul.lane == "AIV1.V"
    # the run ends when q1's last store (the last span) is visible in L2: 48 cycles after MTE3 let go
    last_end = max(s.end for s in run.trace.spans)
    assert run.trace.makespan == last_end + M.l2_write_latency_cycles - M.ub_to_gm.fixed_cycles


def test_listing_a_join_pairs_tokens_and_item_slots():
    pipe, _, _, _ = join_pipeline(3, 3, depth=2)
    joined = [(t.params[0], str(t.resources["x"]), str(t.resources["y"])) for t in pipe.enumerate()
              if t.process == "j"]
    assert joined == [(k, f"ca.item[slot {k % 2}]", f"cb.item[slot {k % 2}]") for k in range(3)]


def test_a_join_of_token_channels_pairs_tokens():
    """Token channels join too: the body gets one token per channel, in the order listed."""
    a, b = Channel("ta", depth=2), Channel("tb", depth=2)
    X = Tensor(shape=(3, 64, 64), dtype=F32)
    pa = process("pa").produces(a).body(for_each(Dense[3](), lambda t: send(a, t)))
    pb = process("pb").produces(b).body(for_each(Dense[3](), lambda t: send(b, 10 + t)))
    pj = process("pj").consumes(a, b).body(consume((a, b), lambda u, v: task(combine2, [u, v], {
        "x": X[u], "y": X[v - 10], "out": X[u]})))
    node = pj.workload
    assert node.kind is NodeKind.JOIN and node.channels == (a, b) and [v.name for v in node.vars] == ["u", "v"]
    assert [t.params for t in connect(pa, pb, pj).enumerate() if t.process == "pj"] == [[0, 10], [1, 11], [2, 12]]


# -- misuse ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_a, n_b, ended, more, count", [(4, 3, "cb", "ca", 3), (2, 5, "ca", "cb", 2)])
def test_join_channels_closing_at_different_counts_is_an_error(n_a, n_b, ended, more, count):
    pipe, *_ = join_pipeline(n_a, n_b, cycles=(10, 10, 10))
    for run in (lambda: pipe.enumerate(), lambda: simulate(pipe, PinnedCosts(), RunOptions())):
        with pytest.raises(PipelineError) as e:
            run()
        assert e.value.what == (f"consume(['ca', 'cb']) pairs the k-th tokens of its channels, but '{ended}' "
                                f"closed after {count} token(s) while '{more}' delivered token {count + 1}: the "
                                "channels' producers send different numbers of tokens.")
        assert e.value.hint.startswith("Send the same number of tokens to every channel of a join")
        assert e.value.where is not None and "consume([ca, cb]" in e.value.where.code


def test_bad_joins_are_refused_at_their_line():
    a, b = Channel("a", depth=2), Channel("b", depth=2)
    with pytest.raises(DSLUsageError) as e:
        consume([a, a], lambda x, y: None)
    assert e.value.what == ("consume([...]) lists channel 'a' twice; a join takes one token from each channel it "
                            "lists.")
    assert e.value.where is not None and "consume([a, a]" in e.value.where.code
    with pytest.raises(PtortTypeError, match=r"consume\(\[\], \.\.\.\) joins no channel"):
        consume([], lambda: None)
    with pytest.raises(PtortTypeError, match="consume\\(\\[...\\]\\) joins channels, but the list holds int 3"):
        consume([a, 3], lambda x, y: None)
    with pytest.raises(PtortTypeError) as e:
        consume([a, b], lambda t: None)
    assert e.value.what == ("the consume body <lambda>(t) must take 2 arguments (one token per joined channel, in the "
                            "order listed).")
    assert e.value.hint == "Write it as consume([a, b], lambda ta, tb: ...)."


def test_a_join_counts_as_consuming_each_of_its_channels():
    """Each channel is consumed once per body and never inside a loop, join or not."""
    a, b = Channel("a", depth=2), Channel("b", depth=2)
    X = Tensor(shape=(2, 64, 64), dtype=F32)
    with pytest.raises(DSLUsageError, match="process 'p' consumes channel 'a' twice"):
        process("p").consumes(a, b).body_func(lambda: [
            consume([a, b], lambda u, v: combine2[u](x=X[u], y=X[v], out=X[u])),
            consume(a, lambda u: scale2[u](src=X[u], dst=X[u]))])
    with pytest.raises(DSLUsageError, match=r"consume\('a'\) inside a for_each/P.seq loop"):
        process("q").consumes(a, b).body(for_each(Dense[2](), lambda i: consume(
            [a, b], lambda u, v: combine2[u](x=X[u], y=X[v], out=X[u]))))


def test_a_one_channel_list_is_a_plain_consume():
    a = Channel("a", depth=2)
    X = Tensor(shape=(2, 64, 64), dtype=F32)
    node = process("p").consumes(a).body(consume([a], lambda t: scale2[t](src=X[t], dst=X[t]))).workload
    assert node.kind is NodeKind.CONSUME and node.channel is a


def test_a_consume_inside_a_join_body_is_refused():
    a, b, c = Channel("a", depth=2), Channel("b", depth=2), Channel("c", depth=2)
    X = Tensor(shape=(2, 64, 64), dtype=F32)
    with pytest.raises(DSLUsageError) as e:
        process("p").consumes(a, b, c).body(consume([a, b], lambda u, v: consume(
            c, lambda w: combine2[w](x=X[u], y=X[v], out=X[w]))))
    assert e.value.what.startswith("consume('c') inside a join of channels 'a' and 'b' (at test_join.py:")


@pytest.mark.parametrize("node, what", [
    (lambda: Workload(NodeKind.SEND, channel="x", value=1), "a send node sends str 'x', not a Channel."),
    (lambda: Workload(NodeKind.JOIN, channels=("a", "b"), vars=(), body=Workload(NodeKind.EMPTY)),
     "a join node consumes str 'a', not a Channel."),
    (lambda: Workload(NodeKind.RECORD, event=3), "a record node records int 3, not an Event."),
])
def test_nodes_built_by_hand_must_use_channels_and_events(node, what):
    """The reference constructor Workload(kind, ...) takes any field value: a process refuses what is not a Channel
    or an Event when its body is set, not with an AttributeError later."""
    with pytest.raises(PtortTypeError) as e:
        process("p").body(node())
    assert e.value.what == f"process 'p': {what}"
