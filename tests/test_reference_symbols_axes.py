"""The reference's (PTO-WSP v9 HEAD) Ragged and Sparse axes at run time: a Ragged bound to one loop variable numbers
its items 0..total-1, and a compiled program rebinds a Ragged's or a Sparse's structure between runs through the
symbols ``outer_<id>``, ``lengths_<id>``, ``indptr_<id>`` and ``indices_<id>`` (its tests
test_codegen_ragged_axis.py and test_codegen_select_sparse.py), every value checked with an error that names the
symbol."""
from __future__ import annotations

import numpy as np
import pytest
from source_lines import here, located

from ptort_lab import (
    Channel,
    Dense,
    DenseDyn,
    DType,
    InOut,
    P,
    PtortTypeError,
    PtortValueError,
    Ragged,
    Sparse,
    Tensor,
    Tile,
    connect,
    consume,
    for_each,
    kernel,
    parallel_for,
    process,
    select,
    send,
    task,
    tl,
    workload,
)
from ptort_lab.dsl.axes import RaggedFlat

I32 = DType.I32
LATENCY = "__pto_wsp_channel_latency_cycles"


@kernel
def mark(y_tile: InOut[Tile[1, 1, I32]]):
    """y += 1 (the reference tests' kernel)."""
    v = tl.load(y_tile)
    tl.store(y_tile, tl.add(v, tl.constant(1.0, I32)))


def marks(rows: int) -> tuple[np.ndarray, Tensor]:
    y = np.zeros((rows, 1, 1), dtype=np.int32)
    return y, Tensor(data=y, shape=y.shape, dtype=I32)


def ragged_program(ragged: Ragged, rows: int = 3):
    y, Y = marks(rows)

    @workload
    def wl():
        for t in P.seq(ragged, name="t"):
            mark[t](y_tile=Y[t])

    return wl().named("dyn_ragged").compile(), y


def sparse_program(sparse: Sparse, rows: int = 4):
    y, Y = marks(rows)

    @workload
    def wl():
        for e in P.sel(sparse, name="e"):
            mark[e](y_tile=Y[e])

    return wl().named("dyn_sparse_select").compile(), y


# -- 1. a Ragged bound to one loop variable ---------------------------------------------------------------------------
def test_p_seq_over_a_ragged_numbers_its_items_row_by_row():
    """P.seq(Ragged(3, [2, 0, 1]), name="t") runs t = 0, 1, 2 (the reference's flat loop), not (row, item) pairs."""
    ragged = Ragged(3, [2, 0, 1])
    program, y = ragged_program(ragged)
    tasks = program.enumerate()
    assert [(t.params, t.bindings) for t in tasks] == [([0], {"t": 0}), ([1], {"t": 1}), ([2], {"t": 2})]
    program.execute()
    assert y.reshape(3).tolist() == [1, 1, 1]
    loop = program.workload
    assert isinstance(loop.axes[0], RaggedFlat) and loop.axes[0].ragged is ragged
    assert repr(loop.axes[0]) == "Ragged(3, [2, 0, 1]) (flat)" and loop.axes[0].size == 3


def test_every_one_variable_loop_over_a_ragged_is_flat_and_p_still_gives_pairs():
    ragged = Ragged(2, [1, 2])

    @workload
    def loops():
        for i in P.seq(ragged):
            task("seq", [i], [])
        for e in P.sel(ragged):
            task("sel", [e], [])
        for b, j in P(ragged):
            task("pair", [b, j], [])

    assert [(t.kernel, t.params) for t in loops().enumerate()] == [
        ("seq", [0]), ("seq", [1]), ("seq", [2]), ("sel", [0]), ("sel", [1]), ("sel", [2]),
        ("pair", [0, 0]), ("pair", [1, 0]), ("pair", [1, 1])]
    for build in (for_each, parallel_for, select):
        w = build(ragged, lambda t: task("k", [t], []))
        assert [t.params for t in w.enumerate()] == [[0], [1], [2]]


def test_a_flat_ragged_loop_nests_under_an_outer_loop():
    ragged = Ragged(2, [2, 1])

    @workload
    def nested():
        for b in P(Dense[2]()):
            for t in P.seq(ragged, name="t"):
                task("k", [b, t], [])

    assert [t.params for t in nested().enumerate()] == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]


# -- 2. Ragged rebinding (test_codegen_ragged_axis.py) ----------------------------------------------------------------
def test_a_ragged_total_changes_without_recompile():
    """The reference's test: the same program runs 2 items, then 3, as outer_<id> / lengths_<id> say."""
    ragged = Ragged(outer_size=2, lengths=[1, 1])
    program, y = ragged_program(ragged)
    rid = id(ragged)
    program.set_symbol_u64(f"outer_{rid}", 2)
    program.set_symbol_ptr(f"lengths_{rid}", np.asarray([1, 1], dtype=np.int32))
    program.execute()
    assert y.reshape(3).tolist() == [1, 1, 0]
    assert program.stats.task_count == 2
    y[:] = 0
    program.set_symbol_ptr(f"lengths_{rid}", np.asarray([1, 2], dtype=np.int32))
    program.execute()
    assert y.reshape(3).tolist() == [1, 1, 1]
    assert program.stats.task_count == 3
    assert [t.params for t in program.enumerate()] == [[0], [1], [2]]
    # the axis itself is unchanged: the workload lists as built, outside the program's runs
    assert (ragged.outer_size, ragged.lengths, ragged.total()) == (2, [1, 1], 2)
    assert [t.params for t in program.workload.enumerate()] == [[0], [1]]


def test_a_rebound_ragged_changes_pairs_row_lengths_and_outer_size():
    """P(ragged) pairs, DenseDyn(ragged.length(b)) and a one-row Ragged all follow the bound structure."""
    ragged = Ragged(2, [2, 1])

    @workload
    def wl():
        for b, j in P(ragged):
            task("pair", [b, j], [])
        for b in P(Dense[1]()):
            for j in P(DenseDyn(ragged.length(b))):
                task("row0", [j], [])

    program = wl().compile()
    program.set_symbol_u64(f"outer_{id(ragged)}", 3)
    program.set_symbol_ptr(f"lengths_{id(ragged)}", [1, 0, 2])
    assert [(t.kernel, t.params) for t in program.enumerate()] == [
        ("pair", [0, 0]), ("pair", [2, 0]), ("pair", [2, 1]), ("row0", [0])]


def test_the_bound_array_is_read_when_each_run_starts():
    """As the reference reads its pointer: the array changed in place after set_symbol_ptr changes the next run."""
    ragged = Ragged(2, [1, 1])
    program, y = ragged_program(ragged)
    lengths = np.asarray([1, 1], dtype=np.int32)
    program.set_symbol_ptr(f"lengths_{id(ragged)}", lengths)
    lengths[1] = 2
    program.execute()
    assert y.reshape(3).tolist() == [1, 1, 1]


def test_a_program_that_binds_nothing_runs_the_built_structure():
    program, y = ragged_program(Ragged(2, [2, 1]))
    program.execute()
    assert y.reshape(3).tolist() == [1, 1, 1]


# -- 2. Sparse rebinding (test_codegen_select_sparse.py) --------------------------------------------------------------
def test_sparse_select_indices_change_without_recompile():
    """The reference's test: indices [0, 2, 1] mark rows 0..2, then one row holding index 3 marks row 3 only."""
    sparse = Sparse(outer_size=2, indptr=[0, 2, 3], indices=[0, 2, 1])
    program, y = sparse_program(sparse)
    sid = id(sparse)

    def bind(outer, indptr, indices):
        program.set_symbol_u64(f"outer_{sid}", outer)
        program.set_symbol_ptr(f"indptr_{sid}", np.asarray(indptr, dtype=np.int32))
        program.set_symbol_ptr(f"indices_{sid}", np.asarray(indices, dtype=np.int32))

    bind(2, [0, 2, 3], [0, 2, 1])
    program.execute()
    assert y.reshape(4).tolist() == [1, 1, 1, 0]
    assert [t.params for t in program.enumerate()] == [[0], [2], [1]]
    y[:] = 0
    bind(1, [0, 1], [3])
    program.execute()
    assert y.reshape(4).tolist() == [0, 0, 0, 1]
    assert program.stats.task_count == 1
    assert (sparse.outer_size, sparse.indptr, sparse.indices) == (2, [0, 2, 3], [0, 2, 1])


def test_a_rebound_sparse_changes_its_rows():
    """P.sel(sp[b]) under P(Dense[2]()) reads each row of the bound structure."""
    sparse = Sparse(2, [0, 1, 2], [5, 6])

    @workload
    def wl():
        for b in P(Dense[2]()):
            for e in P.sel(sparse[b]):
                task("k", [b, e], [])

    program = wl().compile()
    program.set_symbol_ptr(f"indptr_{id(sparse)}", [0, 0, 3])
    program.set_symbol_ptr(f"indices_{id(sparse)}", [7, 8, 9])
    assert [t.params for t in program.enumerate()] == [[1, 7], [1, 8], [1, 9]]


# -- 2. the checks ----------------------------------------------------------------------------------------------------
def test_an_unknown_axis_id_is_refused_naming_the_program_symbols():
    ragged = Ragged(2, [1, 1])
    program, _ = ragged_program(ragged)
    rid = id(ragged)
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        program.set_symbol_u64("outer_12345", 2)
    assert e.value.what == ("set_symbol_u64('outer_12345', ...): no Ragged or Sparse axis of this program has the id "
                            "12345.")
    assert e.value.hint == (f"Its Ragged and Sparse axes bind Ragged(2, [1, 1]): outer_{rid}, lengths_{rid} (the "
                            "number is the axis's id()).")
    located(e, line)
    with pytest.raises(PtortValueError) as e:
        program.set_symbol_ptr(f"indptr_{rid}", [0, 1])
    assert e.value.what == (f"set_symbol_ptr('indptr_{rid}', ...): Ragged(2, [1, 1]) is a Ragged; its symbols are "
                            f"outer_{rid} and lengths_{rid}.")


def test_the_wrong_setter_is_refused_saying_which_one_to_use():
    ragged = Ragged(2, [1, 1])
    program, _ = ragged_program(ragged)
    rid = id(ragged)
    with pytest.raises(PtortTypeError) as e:
        program.set_symbol_u64(f"lengths_{rid}", 2)
    assert e.value.what == (f"set_symbol_u64('lengths_{rid}', 2): lengths_{rid} is the lengths array of "
                            "Ragged(2, [1, 1]), not a number.")
    assert e.value.hint == (f"Bind it with program.set_symbol_ptr('lengths_{rid}', np.array([...], "
                            "dtype=np.int32)).")
    with pytest.raises(PtortTypeError) as e:
        program.set_symbol_ptr(f"outer_{rid}", np.array([2]))
    assert e.value.what == (f"set_symbol_ptr('outer_{rid}', ...): outer_{rid} is the outer size of Ragged(2, [1, 1]), "
                            "a number, not an array.")
    assert e.value.hint == f"Write program.set_symbol_u64('outer_{rid}', n)."
    with pytest.raises(PtortTypeError) as e:
        program.set_symbol_f32(f"outer_{rid}", 2.0)
    assert e.value.what == (f"set_symbol_f32('outer_{rid}', 2.0): outer_{rid} is the outer size (a whole number) of "
                            "Ragged(2, [1, 1]), not an f32.")
    with pytest.raises(PtortValueError) as e:
        program.set_symbol_ptr("lengths", np.zeros(2, dtype=np.int32))
    assert e.value.what == ("set_symbol_ptr('lengths', ...): this program has no pointer symbol 'lengths'. Pointer "
                            "symbols bind the arrays of its Ragged and Sparse axes: lengths_<id>, indptr_<id> and "
                            "indices_<id>, with <id> the axis's id().")


@pytest.mark.parametrize("value, exc, what", [
    (np.array([1.0, 2.0]), PtortTypeError, "lengths must hold integers, got an array of float64."),
    (np.array([[1, 2]]), PtortValueError, "lengths must be a 1-D array, got shape (1, 2)."),
    ([1, -1], PtortValueError, "lengths[1] is -1; each entry is a row's item count, >= 0."),
    ([1, 2.5], PtortTypeError, "lengths[1] is float 2.5, not an int."),
    (None, PtortTypeError, "lengths must be a 1-D numpy array of integers (or a list of ints), got NoneType None."),
])
def test_bad_lengths_are_refused_when_bound(value, exc, what):
    ragged = Ragged(2, [1, 1])
    program, _ = ragged_program(ragged)
    name = f"lengths_{id(ragged)}"
    with pytest.raises(exc) as e:
        line = here() + 1
        program.set_symbol_ptr(name, value)
    assert e.value.what == f"set_symbol_ptr({name!r}, ...): {what}"
    located(e, line)


@pytest.mark.parametrize("value, exc, what, hint", [
    (0, PtortValueError, "an outer size must be >= 1.", "For a run with no items keep one row and bind its length"),
    (2.0, PtortTypeError, "an outer size must be an int, got float.", "Write program.set_symbol_u64("),
    (True, PtortTypeError, "an outer size must be an int, got bool.", "Write program.set_symbol_u64("),
])
def test_a_bad_outer_size_is_refused_when_bound(value, exc, what, hint):
    ragged = Ragged(2, [1, 1])
    program, _ = ragged_program(ragged)
    name = f"outer_{id(ragged)}"
    with pytest.raises(exc) as e:
        program.set_symbol_u64(name, value)
    assert e.value.what == f"set_symbol_u64({name!r}, {value!r}): {what}"
    assert e.value.hint.startswith(hint)


def test_a_ragged_whose_outer_size_and_lengths_disagree_is_refused_at_execute():
    ragged = Ragged(2, [1, 1])
    program, y = ragged_program(ragged)
    rid = id(ragged)
    program.set_symbol_u64(f"outer_{rid}", 3)
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        program.execute()
    assert e.value.what == (f"Ragged(2, [1, 1]) runs with outer size 3 (set_symbol_u64('outer_{rid}', 3)) but 2 "
                            "lengths (as built): a Ragged takes one length per outer row.")
    assert e.value.hint == (f"Bind the two together before the run: program.set_symbol_u64('outer_{rid}', n) and "
                            f"program.set_symbol_ptr('lengths_{rid}', np.array([...], dtype=np.int32)) with n "
                            "entries.")
    located(e, line)
    assert program.last_error is e.value and y.sum() == 0
    program.set_symbol_ptr(f"lengths_{rid}", [1, 1, 1])
    program.execute()
    assert y.reshape(3).tolist() == [1, 1, 1]


def test_a_ragged_whose_array_goes_bad_after_binding_is_refused_at_execute():
    ragged = Ragged(2, [1, 1])
    program, _ = ragged_program(ragged)
    lengths = np.array([1, 1])
    name = f"lengths_{id(ragged)}"
    program.set_symbol_ptr(name, lengths)
    lengths[0] = -3
    with pytest.raises(PtortValueError) as e:
        program.execute()
    assert e.value.what == (f"set_symbol_ptr({name!r}, ...): lengths[0] is -3; each entry is a row's item count, >= 0 "
                            "(read when the run started: the array changed since it was bound).")


@pytest.mark.parametrize("outer, indptr, indices, what", [
    (2, [0, 1], [3], "runs with outer size 2 (set_symbol_u64('outer_{i}', 2)) but indptr has 2 entries "
                     "(set_symbol_ptr('indptr_{i}', ...)); it needs outer + 1 = 3."),
    (1, [0, 2], [3], "runs with indptr (set_symbol_ptr('indptr_{i}', ...)) ending at 2, the number of stored "
                     "indices, but indices has 1 entries (set_symbol_ptr('indices_{i}', ...))."),
])
def test_a_sparse_whose_arrays_disagree_is_refused_at_execute(outer, indptr, indices, what):
    sparse = Sparse(2, [0, 2, 3], [0, 2, 1])
    program, y = sparse_program(sparse)
    i = id(sparse)
    program.set_symbol_u64(f"outer_{i}", outer)
    program.set_symbol_ptr(f"indptr_{i}", indptr)
    program.set_symbol_ptr(f"indices_{i}", indices)
    with pytest.raises(PtortValueError) as e:
        program.execute()
    assert e.value.what == "Sparse(2, nnz=3) " + what.format(i=i)
    assert y.sum() == 0


@pytest.mark.parametrize("part, value, what", [
    ("indptr", [1, 2, 3], "indptr must start at 0 and never decrease, got [1, 2, 3]."),
    ("indptr", [0, 2, 1], "indptr must start at 0 and never decrease, got [0, 2, 1]."),
    ("indices", [0, -2, 1], "indices[1] is -2; each entry is a loop index, >= 0."),
])
def test_bad_sparse_arrays_are_refused_when_bound(part, value, what):
    sparse = Sparse(2, [0, 2, 3], [0, 2, 1])
    program, _ = sparse_program(sparse)
    name = f"{part}_{id(sparse)}"
    with pytest.raises(PtortValueError) as e:
        program.set_symbol_ptr(name, np.asarray(value, dtype=np.int32))
    assert e.value.what == f"set_symbol_ptr({name!r}, ...): {what}"


def test_an_unknown_plain_symbol_is_still_refused_and_the_latency_still_set():
    """A name nothing reads is refused (as before); __pto_wsp_channel_latency_cycles still sets the latency."""
    program, _ = ragged_program(Ragged(2, [1, 1]))
    with pytest.raises(PtortValueError) as e:
        program.set_symbol_u64("x", 1)
    assert e.value.what == "unknown symbol 'x': this program reads no symbol of that name, so setting it would " \
                           "change nothing."
    ch = Channel("c", depth=2)
    producer = process("producer").produces(ch).body(for_each(Dense[4](), lambda i: send(ch, task("load", [i], []))))
    consumer = process("consumer").consumes(ch).body(consume(ch, lambda t: task("use", [t], [])))
    pipeline = connect([producer, consumer], [ch]).compile()
    pipeline.set_symbol_u64(LATENCY, 50)
    assert pipeline.run_options.channel_latency_cycles == 50


def test_a_pipeline_process_loops_over_a_rebound_ragged_and_reads_a_symbol():
    """The symbols of a pipeline's process bodies: a flat for_each over a Ragged and a Symbol argument."""
    from ptort_lab.dsl.scalar_expr import Symbol

    ragged = Ragged(2, [1, 1])
    ch = Channel("c", depth=2)
    producer = process("producer").produces(ch).body(
        for_each(ragged, lambda i: send(ch, task("load", [i], {"s": Symbol("s")}))))
    consumer = process("consumer").consumes(ch).body(consume(ch, lambda t: task("use", [t], [])))
    program = connect([producer, consumer], [ch]).compile()
    program.set_symbol_u64(f"outer_{id(ragged)}", 2)
    program.set_symbol_ptr(f"lengths_{id(ragged)}", [2, 1])
    program.set_symbol_f32("s", 1.5)
    program.execute()
    loads = [(t.params, t.resources) for t in program.tasks if t.kernel == "load"]
    assert loads == [([0], {"s": 1.5}), ([1], {"s": 1.5}), ([2], {"s": 1.5})]
    assert sorted(t.params[0] for t in program.tasks if t.kernel == "use") == [0, 1, 2]
    with pytest.raises(PtortValueError) as e:
        program.set_symbol_u64("zz", 1)
    assert e.value.hint == (f"Its symbols are 's'; its Ragged and Sparse axes bind Ragged(2, [1, 1]): "
                            f"outer_{id(ragged)}, lengths_{id(ragged)}. __pto_wsp_channel_latency_cycles sets the "
                            "channel latency.")


# -- the workload is scanned anew: a pipeline whose process body is set again ----------------------------------------
def test_a_replaced_process_body_takes_its_new_axis_symbols_and_the_old_ones_only_warn():
    """After producer.body(...) loops over another Ragged, its symbols are taken at once (before any execute()),
    symbols still bound to the old axis affect nothing (a warning names them, never an error), and enumerate()
    and execute() list the same tasks."""
    from ptort_lab.symbols import StaleSymbolWarning

    r1, r2 = Ragged(2, [1, 1]), Ragged(2, [2, 2])
    ch = Channel("c", depth=2)
    producer = process("producer").produces(ch).body(for_each(r1, lambda i: send(ch, task("load", [i], []))))
    consumer = process("consumer").consumes(ch).body(consume(ch, lambda t: task("use", [t], [])))
    program = connect([producer, consumer], [ch]).compile()
    program.set_symbol_ptr(f"lengths_{id(r1)}", [2, 1])
    assert program.execute().stats.task_count == 6
    producer.body(for_each(r2, lambda i: send(ch, task("load", [i], []))))
    program.set_symbol_ptr(f"lengths_{id(r2)}", [3, 3])
    for _ in range(2):
        with pytest.warns(StaleSymbolWarning) as warned:
            line = here() + 1
            listed = len(program.enumerate())
        assert listed == 12
        with pytest.warns(StaleSymbolWarning):
            assert program.execute().stats.task_count == 12
    message = str(warned[0].message)
    assert message.startswith(f"symbol lengths_{id(r1)} of Ragged(2, [1, 1]) affects nothing in this run: the "
                              "program's workload no longer loops over that axis")
    assert f"outer_{id(r2)} and lengths_{id(r2)}" in message
    assert (warned[0].filename, warned[0].lineno) == (__file__, line)
    producer.body(for_each(r1, lambda i: send(ch, task("load", [i], []))))  # the old axis back: its binding applies
    with pytest.warns(StaleSymbolWarning, match=f"symbol lengths_{id(r2)} of Ragged"):  # (r2's, now)
        assert program.execute().stats.task_count == 6


# -- messages and the built structure ----------------------------------------------------------------------------------
def test_unpacking_a_flat_ragged_loop_says_how_a_ragged_is_iterated():
    ragged = Ragged(3, [2, 0, 1])
    for api in (P.seq, P.sel):
        @workload
        def wl(api=api):
            for b, j in api(ragged):
                task("k", [b, j], [])

        with pytest.raises(Exception) as e:
            wl()
        assert "it cannot be iterated. P.seq, P.sel and for_each over a Ragged iterate it flat, one index per item " \
               "(0 .. total() - 1, row by row), as the reference does; P(ragged) gives (row, item) pairs. Here: " \
               "Ragged(3, [2, 0, 1])." in str(e.value)
        assert "for b, j in P(ragged):" in str(e.value)


def test_the_built_structure_can_be_set_and_is_checked_as_built():
    """r.lengths = [...], sp.indices = [...], r.outer_size = n set the built structure (HEAD took them unchecked);
    each value is checked as the constructor checks it, and a pair set to disagree is refused where it is listed."""
    r = Ragged(2, [1, 1])
    sp = Sparse(2, [0, 1, 2], [0, 1])

    @workload
    def wl():
        for i, j in P(r):
            task("k", [i, j], [])
        for b in P(Dense[2]()):
            for e in P.sel(sp[b]):
                task("s", [b, e], [])

    program = wl().compile()
    r.lengths = [2, 3]
    sp.indices = [5, 6]
    assert [t.params for t in program.enumerate()] == [[0, 0], [0, 1], [1, 0], [1, 1], [1, 2], [0, 5], [1, 6]]
    r.outer_size, r.lengths = 1, [1]
    sp.indptr, sp.indices = [0, 1, 1], [7]
    assert [t.params for t in program.enumerate()] == [[0, 0], [0, 7]]
    assert (r.built, sp.built) == ((1, [1]), (2, [0, 1, 1], [7]))
    for stmt, exc, what in (
            ("r.lengths = [1, -1]", PtortValueError, "Ragged lengths must be >= 0, got [1, -1]."),
            ("r.lengths = None", PtortTypeError, "Ragged(1, [1]).lengths = ...: lengths must be a list of ints, got "
                                                 "NoneType None."),
            ("r.outer_size = 0", PtortValueError, "Ragged(1, [1]).outer_size = 0: the outer size must be in "
                                                  "1..20,000,000."),
            ("sp.outer_size = 2.0", PtortTypeError, "Sparse(2, nnz=1).outer_size = 2.0: the outer size must be an "
                                                    "int, got float."),
            ("sp.indptr = [1, 2]", PtortValueError, "Sparse indptr must start at 0 and never decrease, got [1, 2]."),
            ("sp.indices = [1.5]", PtortTypeError, "Sparse(2, nnz=1).indices = ...: indices[0] is float 1.5, not an "
                                                   "int.")):
        with pytest.raises(exc) as e:
            exec(stmt, {"r": r, "sp": sp})
        assert e.value.what == what, stmt
    assert (r.built, sp.built) == ((1, [1]), (2, [0, 1, 1], [7]))
    r.outer_size = 2
    with pytest.raises(PtortValueError) as e:
        program.enumerate()
    assert e.value.what == ("Ragged(2, [1]): outer_size is 2 but lengths has 1 entries; a Ragged takes one length "
                            "per outer row.")
    r.lengths = [1, 1]
    sp.indices = [1, 2]
    with pytest.raises(PtortValueError) as e:
        program.enumerate()
    assert e.value.what == ("Sparse(2, nnz=1): indptr ends at 1 (the number of stored indices) but indices has 2 "
                            "entries.")


def test_a_huge_id_and_a_masked_array_are_refused_with_our_errors():
    ragged = Ragged(2, [1, 1])
    program, _ = ragged_program(ragged)
    with pytest.raises(PtortValueError) as e:
        program.set_symbol_u64("outer_" + "9" * 5000, 2)
    assert e.value.what == ("set_symbol_u64('outer_9999999999999999999999999999999999'... (5,006 characters), ...): "
                            "no Ragged or Sparse axis of this program has the id 999999999999...(5,000 digits).")
    with pytest.raises(PtortValueError) as e:
        program.set_symbol_ptr(f"lengths_{id(ragged)}", np.ma.array([1, 2], mask=[0, 1]))
    assert e.value.what == (f"set_symbol_ptr('lengths_{id(ragged)}', ...): lengths is a masked array with 1 masked "
                            "entry (at [1]); a masked entry has no value to loop over.")
    assert e.value.hint == (f"Fill the masked entries first, program.set_symbol_ptr('lengths_{id(ragged)}', "
                            "array.filled(0)), or bind a plain np.array.")
    program.set_symbol_ptr(f"lengths_{id(ragged)}", np.ma.array([1, 2], mask=[0, 0]))  # (nothing masked: its data)
    assert program.execute().stats.task_count == 3


def test_a_ragged_or_sparse_pickled_before_run_time_symbols_loads_whole():
    """They kept outer_size / lengths (indptr, indices) as attributes: unpickled now, they read as built."""
    import pickle
    old_ragged = Ragged.__new__(Ragged)
    old_ragged.__setstate__({"outer_size": 2, "lengths": [1, 2], "size": 3})  # (what such a pickle holds)
    old_sparse = Sparse.__new__(Sparse)
    old_sparse.__setstate__({"outer_size": 2, "indptr": [0, 1, 2], "indices": [3, 0]})
    for r in (old_ragged, pickle.loads(pickle.dumps(old_ragged))):
        assert (r.outer_size, r.lengths, r.total(), repr(r)) == (2, [1, 2], 3, "Ragged(2, [1, 2])")
    for sp in (old_sparse, pickle.loads(pickle.dumps(old_sparse))):
        assert (sp.outer_size, sp.indptr, sp.indices, sp[1]) == (2, [0, 1, 2], [3, 0], [0])
