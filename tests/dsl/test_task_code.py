"""Task factories written as one function (dsl/task_code.py): the same Tasks as the general factory, and the same
errors (through it) for every binding that is not the usual case."""
from __future__ import annotations

import itertools
from typing import Any

import pytest
from source_lines import here, located

from ptort_lab import DType, In, Out, P, PtortValueError, Tensor, Tile, kernel, tl, workload
from ptort_lab.dsl import bindings, task_code
from ptort_lab.dsl.axes import Dense
from ptort_lab.dsl.expr import LoopVar
from ptort_lab.dsl.types import TensorView
from ptort_lab.dsl.workload import task

VI, VJ = LoopVar("i"), LoopVar("j")
X, Y, Z = Tensor(shape=(4, 6), name="X"), Tensor(shape=(5, 3, 2), name="Y"), Tensor(shape=(2, 2), name="Z")


def _general(node_of: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The general factory of a fresh node (compile_factory handing it back as it is)."""
    with monkeypatch.context() as m:
        m.setattr(bindings, "compile_factory", lambda *a: a[-1])
        return bindings.task_factory(node_of())


def _plain(value: Any) -> Any:
    if isinstance(value, TensorView):
        return ("view", value.base.name, value.index)
    return value


def _outcome(make: Any, b: dict[str, Any]) -> tuple[Any, ...]:
    try:
        t = make(b)
    except Exception as e:  # noqa: BLE001 - the error itself is compared
        return type(e).__name__, str(e)
    res = {k: _plain(v) for k, v in t.resources.items()} if isinstance(t.resources, dict) else \
        [_plain(v) for v in t.resources]
    return t.kernel, t.params, res, t.id, t.bindings, t.kernel_ref, t.cycles, t.loc


def _dict_node() -> Any:
    return task("k", [VI, VI * 2 + VJ], {"x": X[VI][VJ // 2], "y": Y[VI + 1][VJ % 3], "n": VJ - 1, "z": Z[1],
                                         "s": 3})


def _list_node() -> Any:
    return task("k", [VJ], [X[VI][VJ], 7, Y[-1][VI], VI * VJ])


@pytest.mark.parametrize("node_of", [_dict_node, _list_node])
def test_every_binding_gives_the_general_factorys_task_or_error(node_of: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bindings in range, out of range, negative and of other types (a float, a bool, a numpy int is not here:
    those go through the general factory too): the same Task fields, or the same error."""
    general = _general(node_of, monkeypatch)
    fast = bindings.task_factory(node_of())
    assert fast is not general and fast.__code__.co_filename == "<task factory>"
    seen = set()
    for i, j in itertools.product([-2, -1, 0, 1, 3, 4, 5, 2.0, True], [-1, 0, 1, 5, 6, 11, 12]):
        b = {"i": i, "j": j}
        want = _outcome(general, b)
        assert _outcome(fast, b) == want, b
        seen.add(want[0] if len(want) == 2 else "task")
    assert {"task", "PtortValueError", "PtortTypeError"} <= seen


def test_a_fixed_view_is_the_same_object_and_a_literal_negative_index_counts_from_the_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    node = _dict_node()
    fixed = node.resources["z"]
    t = bindings.task_factory(node)({"i": 2, "j": 5})
    assert t.resources["z"] is fixed
    assert (t.params, t.resources["x"].index, t.resources["y"].index, t.resources["n"]) == ([2, 9], (2, 2), (3, 2), 4)
    listed = bindings.task_factory(_list_node())({"i": 1, "j": 2})
    assert listed.resources[2].index == (4, 1)  # Y[-1][i]: row 4 of 5, through the general factory


def test_a_missing_loop_variable_is_the_general_factorys_error() -> None:
    make = bindings.task_factory(_dict_node())
    with pytest.raises(Exception) as err:
        make({"i": 1})
    assert type(err.value).__name__ == "DSLUsageError"
    assert str(err.value).startswith("loop variable 'j' has no value here: it is used outside its loop (the loop "
                                     "variables bound here: 'i').")
    # raised from None over the general factory's own KeyError, which is chained to nothing (the compiled
    # function's failure is not in the chain)
    assert err.value.__suppress_context__ and err.value.__context__.__context__ is None


def test_nodes_not_written_out_keep_the_general_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(task_code, "MAX_INLINE_ENTRIES", 2)
    make = bindings.task_factory(task("k", [VI], {"x": X[VI][VI], "y": Y[VI][0][0]}))
    assert make.__code__.co_filename != "<task factory>"
    assert make({"i": 1}).resources["y"].index == (1, 0, 0)


def test_a_generator_of_resources_is_read_once() -> None:
    """``task("k", [b], (X[b][j] for j in ...))``: the generator is read once, by the factory, and every task gets
    its views (the compiled factory once got an exhausted generator: no resources at all)."""
    @workload
    def w():
        for b in P(Dense[3]()):
            task("k", [b], (X[b][j] for j in range(2)))
    assert [(t.params, [v.index for v in t.resources]) for t in w().enumerate()] == [
        ([0], [(0, 0), (0, 1)]), ([1], [(1, 0), (1, 1)]), ([2], [(2, 0), (2, 1)])]


def test_an_index_error_names_the_users_line_not_the_generated_factory() -> None:
    """An error raised while the general factory evaluates an index below the compiled one (here a division by
    zero in `X[(4 // b) % 4]`) names the user's line, as before the factory was compiled."""
    @kernel
    def small(src: In[Tile[4, 4, DType.F32]], dst: Out[Tile[4, 4, DType.F32]]):
        tl.store(dst, tl.load(src))

    A, B = Tensor(shape=(4, 4, 4), dtype=DType.F32), Tensor(shape=(4, 4, 4), dtype=DType.F32)

    @workload
    def w():
        for b in P(Dense[4]()):
            small[b](src=A[(4 // b) % 4], dst=B[b])
    program = w().compile(compute_values=False)
    with pytest.raises(PtortValueError) as err:
        line = here() + 1
        program.execute()
    assert err.value.what == "`(4 // b)` divides by zero for {'b': 0}."
    located(err, line)


class _Tenfold(LoopVar):
    """A loop variable whose own evaluate differs from reading its binding (a user's subclass)."""

    def evaluate(self, bindings: Any) -> Any:
        return bindings[self.name] * 10


def test_a_loop_variable_subclass_is_read_as_the_general_factory_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a parameter or plain resource, a LoopVar (of any class) is its binding (``bindings._getter``); in a view's
    index, its ``evaluate`` (``TensorView.resolve``): the compiled factory does both the same way."""
    def node() -> Any:
        return task("k", [_Tenfold("i"), VJ], {"x": X[_Tenfold("j")], "n": _Tenfold("i")})
    general = _general(node, monkeypatch)
    fast = bindings.task_factory(node())
    assert fast.__code__.co_filename == "<task factory>"
    b = {"i": 1, "j": 0}
    assert _outcome(fast, b) == _outcome(general, b)
    made = fast(b)
    assert (made.params, made.resources["x"].index, made.resources["n"]) == ([1, 0], (0,), 1)


def test_nodes_written_alike_share_one_compiled_code_with_their_own_values() -> None:
    """The copies of a process on each core write the same text with other values bound: compiled once (the cost
    of writing a factory out), each function still reads its own tensors and names."""
    a = bindings.task_factory(task("k", [VI], {"x": X[VI][VJ]}))
    w = Tensor(shape=X.shape, name="W")  # (the bounds checked are in the text: a copy's tensors have the same shapes)
    b = bindings.task_factory(task("q", [VI], {"x": w[VI][VJ]}))
    assert a.__code__ is b.__code__
    ta, tb = a({"i": 1, "j": 2}), b({"i": 1, "j": 2})
    assert (ta.kernel, ta.resources["x"].base, tb.kernel, tb.resources["x"].base) == ("k", X, "q", w)
