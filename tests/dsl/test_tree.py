"""The workload IR: NodeKind and its schemas, the reference constructor, immutable nodes, the generic walks, the
pipeline's channel ends, and the interpreter table covering every kind."""
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DSLUsageError,
    DType,
    Event,
    In,
    NodeKind,
    Out,
    P,
    PtortTypeError,
    PtortValueError,
    Tile,
    Workload,
    cond,
    connect,
    consume,
    for_each,
    kernel,
    process,
    record,
    replicate,
    send,
    sequential,
    synchronize,
    task,
    tl,
    workload,
)
from ptort_lab.dsl import ir
from ptort_lab.dsl.expr import LoopVar
from ptort_lab.dsl.sizes import least_work
from ptort_lab.dsl.steps import HANDLERS
from ptort_lab.dsl.tree import SCHEMAS, walk
from ptort_lab.dsl.wiring import channel_uses

F32 = DType.F32
KINDS = ("task, parallel_for, for_each, select, cond, combine, sequential, send, consume, join, record, wait, "
         "pipe, connect, empty, slot_set, slot_load")


def test_every_kind_has_a_schema_and_a_step_handler():
    """A new NodeKind needs its SCHEMAS entry and its HANDLERS entry; nothing else switches on kinds."""
    assert set(SCHEMAS) == set(NodeKind) == set(HANDLERS)
    assert ", ".join(k.value for k in NodeKind) == KINDS


@pytest.mark.parametrize("spelled, close", [("conect", "connect"), ("parallelfor", "parallel_for"), ("tsk", "task")])
def test_a_misspelled_kind_is_a_did_you_mean_error(spelled, close):
    """NodeKind("conect") and Workload("conect") name the kind, the closest one and every kind."""
    for make in (lambda: NodeKind(spelled), lambda: Workload(spelled)):
        with pytest.raises(PtortValueError) as e:
            make()
        assert e.value.what == f"unknown workload node kind {spelled!r}."
        assert e.value.hint == f"Did you mean {close!r}? The kinds are {KINDS}."


def test_a_kind_nothing_like_any_lists_the_kinds():
    with pytest.raises(PtortValueError) as e:
        Workload("pipeline_stage_xyz")
    assert e.value.hint == f"The kinds are {KINDS}."


def test_kinds_compare_print_and_format_as_their_strings():
    """A kind reads as the string it always was, so messages built from it do not change."""
    kind = Workload("task", kernel="k").kind
    assert kind is NodeKind.TASK and kind == "task"
    assert (str(kind), f"{kind}", f"{kind:>6}", repr(kind), f"{kind!r}") == ("task", "task", "  task", "'task'",
                                                                              "'task'")


def test_the_reference_constructor_builds_nodes_that_run():
    """Workload(kind, **fields), as the reference's tests write it, enumerates like the DSL's own nodes."""
    i = LoopVar("i")
    body = Workload("task", kernel="k", params=(i,))
    loop = Workload("for_each", name="loop", axes=(Dense[3](),), vars=(i,), body=body)
    assert type(loop).__name__ == "Workload" and loop.name == "loop"
    assert (body.params, body.resources, body.cycles) == ((i,), (), None)
    assert [(t.kernel, t.params) for t in loop.enumerate()] == [("k", [0]), ("k", [1]), ("k", [2])]
    both = Workload("sequential", parts=[loop, Workload("task", kernel="end")])
    assert both.parts == (loop, both.parts[1]) and isinstance(both.parts, tuple)
    assert [t.kernel for t in both.enumerate()] == ["k", "k", "k", "end"]


def test_the_reference_constructor_refuses_what_a_kind_does_not_have():
    """Unknown fields (with a did-you-mean), missing fields and a child that is not a node, each with the kind."""
    with pytest.raises(PtortTypeError) as e:
        Workload("task", kernal="k")
    assert (e.value.what, e.value.hint) == ("Workload('task') has no field 'kernal'.",
                                            "Did you mean 'kernel'? Its fields are kernel, params, resources, cycles.")
    with pytest.raises(PtortTypeError) as e:
        Workload("empty", children=())
    assert (e.value.what, e.value.hint) == ("Workload('empty') has no field 'children'.", "Its fields are none.")
    with pytest.raises(PtortTypeError) as e:
        Workload("consume", channel=Channel("c"), body=Workload("empty"))
    assert (e.value.what, e.value.hint) == ("Workload('consume') needs the field var=.",
                                            "Its fields are channel, var, body.")
    with pytest.raises(PtortTypeError) as e:
        Workload("for_each", axes=(Dense[2](),), vars=(LoopVar("i"),), body=lambda i: None)
    assert e.value.what.startswith("Workload('for_each') field body= must be a workload, got function <function ")
    assert e.value.where.filename == __file__ and "body=lambda i: None" in e.value.where.code
    with pytest.raises(PtortTypeError) as e:
        Workload("combine", parts=[1])
    assert e.value.what == "Workload('combine') field parts= must be a workload or a list of them, got list [1]."


def test_nodes_do_not_change_once_built():
    """Setting or deleting a field is refused; named() and the combinators return changed copies."""
    w = Workload("task", kernel="k", name="a")
    for change in (lambda: setattr(w, "name", "b"), lambda: setattr(w, "kernel", "other"),
                   lambda: delattr(w, "params")):
        with pytest.raises(DSLUsageError) as e:
            change()
        assert e.value.what.startswith("workload nodes do not change once built (setting ")
        assert e.value.hint.startswith("Build a new node instead: .named(name) renames a copy")
    renamed = w.named("b")
    dispatched = w.dispatch(DispatchPolicy.round_robin(2))
    assert (w.name, renamed.name, renamed.kernel) == ("a", "b", "k")
    assert w.schedule.dispatch is None and dispatched.schedule.dispatch == DispatchPolicy.round_robin(2)
    assert dispatched.name == "a" and dispatched is not w


def test_reading_another_kinds_field_names_the_kind():
    with pytest.raises(AttributeError, match=r"^a task node has no field 'body'; its fields are kernel, params, "
                                             r"resources, cycles\.$"):
        Workload("task", kernel="k").body  # noqa: B018 - the read is the test


def test_fields_is_a_read_only_view_of_the_kinds_fields():
    w = Workload("slot_load", slot=0, view=None)
    assert dict(w.fields) == {"slot": 0, "view": None, "row": 0, "col": 0}
    with pytest.raises(TypeError):
        w.fields["row"] = 3


def test_children_and_walk_follow_program_order():
    """A loop's body, a cond's then and otherwise, a group's parts: parents first, in program order."""
    @workload
    def w():
        task("first", [0], [])
        for b in P.seq(Dense[2]()):
            with P.when(b < 1):
                task("then", [b], [])
            with P.otherwise():
                task("else", [b], [])
        task("last", [0], [])

    root = w()
    order = [(n.kind.value, getattr(n, "kernel", None) if n.kind is NodeKind.TASK else None) for n in walk(root)]
    assert order == [("combine", None), ("task", "first"), ("for_each", None), ("cond", None), ("task", "then"),
                     ("task", "else"), ("task", "last")]
    assert [c.kind for c in root.children()] == ["task", "for_each", "task"]
    assert Workload("task", kernel="k").children() == ()


def test_uses_name_what_a_node_itself_sends_consumes_records_and_waits_on():
    a, b, ev = Channel("a"), Channel("b"), Event("ev")
    body = process("p").consumes(a).produces(b).body_func(
        lambda: [consume(a, lambda t: send(b, task("k", [t], []))), record(ev), synchronize(ev)]).workload
    sends = [n for n in walk(body) if n.uses("sends")]
    assert [n.kind for n in sends] == ["send"] and sends[0].uses("sends") == (b,)
    assert [n.uses("consumes") for n in walk(body) if n.kind is NodeKind.CONSUME] == [(a,)]
    assert [n.uses("records") for n in walk(body) if n.uses("records")] == [(ev,)]
    assert channel_uses(body) == ([b], [a], [ev], [ev])


def test_a_pipeline_knows_each_channels_producers_and_consumers():
    """Computed once at connect() (and for a P.pipe() block), in process order."""
    work, done = Channel("work", 2), Channel("done", 2)
    src = process("src").produces(work).body(for_each(Dense[4](), lambda t: send(work, task("load", [t], []))))
    pool = replicate(process("w").consumes(work).produces(done).body(
        consume(work, lambda t: send(done, task("work", [t], [])))), 2)
    sink = process("sink").consumes(done).body(consume(done, lambda t: task("store", [t], [])))
    pipe = connect(src, pool, sink)
    assert pipe.is_pipeline and pipe.kind == "connect"
    assert [p.name for p in pipe.producers(work)] == ["src"]
    assert [p.name for p in pipe.consumers(work)] == ["w[0]", "w[1]"]
    assert [p.name for p in pipe.producers(done)] == ["w[0]", "w[1]"]
    assert [p.name for p in pipe.consumers(done)] == ["sink"]
    assert pipe.producers(Channel("elsewhere")) == () == pipe.consumers(Channel("elsewhere"))
    assert [n.kind for n in pipe.children()] == ["for_each", "consume", "consume", "consume"]

    ch = Channel("c", 2)

    @workload
    def piped():
        with P.pipe():
            for_each(Dense[2](), lambda t: send(ch, task("a", [t], [])))
            consume(ch, lambda t: task("b", [t], []))

    node = piped()
    assert node.is_pipeline and node.kind == "pipe" and type(node).__name__ == "Workload"
    assert [p.name for p in node.producers(ch)] == ["stage0"] and [p.name for p in node.consumers(ch)] == ["stage1"]


def test_data_parallel_workloads_are_not_pipelines():
    assert not sequential(task("a", [0], []), task("b", [0], [])).is_pipeline
    assert not cond(True, task("a", [0], [])).is_pipeline


def test_least_work_counts_loops_branches_and_pipelines():
    """Loops multiply, a branch counts its smaller side, a consume 0, other kinds the sum of their children."""
    i = LoopVar("i")
    loop = Workload("parallel_for", axes=(Dense[4](),), vars=(i,), body=Workload("task", kernel="k", params=(i,)))
    branch = Workload("cond", pred=lambda t: True, then=loop, otherwise=Workload("task", kernel="one"))
    assert (least_work(loop).tasks, least_work(loop).iterations) == (4, 4)
    assert least_work(branch).tasks == 1
    assert least_work(Workload("combine", parts=(loop, loop, branch))).tasks == 9
    ch = Channel("c")
    a = process("a").produces(ch).body(for_each(Dense[3](), lambda t: send(ch, task("x", [t], []))))
    b = process("b").consumes(ch).body(consume(ch, lambda t: task("y", [t], [])))
    assert least_work(connect(a, b)).tasks == 6  # a's 3 tasks, and b's one per token a surely sends


def test_kernel_tracing_records_values_and_effects():
    """emit gives the result Value, emit_effect (a store) records an op with none; Python operators go through
    the table tl fills."""
    @kernel
    def k(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
        a = tl.load(x)
        tl.store(y, -(a * a + 1.0) @ a)

    ops = k.trace().ops
    assert [op.kind.value for op in ops] == ["load", "mul", "add", "neg", "matmul", "store"]
    assert all(op.result is not None for op in ops[:-1]) and ops[-1].result is None
    assert set(ir.OPERATORS) == {"add", "sub", "mul", "div", "neg", "abs", "matmul", "getitem"}
    assert ir.active_trace() is None
