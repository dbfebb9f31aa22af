"""``%%ptort``: run a cell of DSL Python, study the pipeline it builds (and its data-parallel twin), return a
PtortResult. ``%load_ext ptort_lab`` registers it."""
from __future__ import annotations

import difflib
import inspect
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class, output_can_be_silenced
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool

from ..errors import PtortError, PtortValueError, SourceLocation
from ..explore import MODES, Knobs, Study, check_knob_limits, is_pipeline, run_study, same_option, task_limit
from ..program import Program, collect_compiled
from ..sim.machine import MACHINES, Machine, ascend_910b, get_machine
from ..sim.numerics import Writes
from ..sim.runner import recording
from .cell import CellBody, bind_knobs, is_cell_file, knobs_from_namespace, outer_files, relocate, tile_from_text
from .display import DEFAULT_SHOW, SHOW_PARTS, PtortResult


@dataclass
class CellOptions:
    """The parsed, checked options of one ``%%ptort`` line."""

    knobs: dict[str, Any] = field(default_factory=dict)  # only those given: depth, tile, tiles, cores
    mode: str = "both"
    show: tuple[str, ...] = DEFAULT_SHOW
    machine: str | None = None
    latency: int | None = None
    trace_out: str | None = None
    output: str | None = None
    interact: bool = False

    def target_machine(self) -> Machine:
        """The machine the runs simulate: --machine's preset, else the default (ascend_910b)."""
        return MACHINES[self.machine] if self.machine is not None else ascend_910b

    def compile_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if self.machine is not None:
            opts["machine"] = MACHINES[self.machine]
        if self.latency is not None:
            opts["channel_latency_cycles"] = self.latency
        return opts


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _positive(value: int | None, option: str, minimum: int = 1) -> int | None:
    if value is not None and value < minimum:
        raise UsageError(f"{option} must be >= {minimum}, got {value}.")
    return value


def parse_tile(text: str) -> tuple[int, int]:
    """``"64x128"`` -> (64, 128); ``"128"`` -> (128, 128)."""
    tile = tile_from_text(text)
    if tile is None:
        raise UsageError(f"--tile takes ROWSxCOLS (e.g. 64x128) or one size for a square tile, got {text!r}.")
    return tile


def parse_show(text: str) -> tuple[str, ...]:
    """``"diagram,ir"`` -> ("diagram", "ir"); also ``all`` and ``none``."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return SHOW_PARTS
    if words == ["none"]:
        return ()
    for w in words:
        if w not in SHOW_PARTS:
            raise UsageError(f"--show got unknown part {w!r}.{_did_you_mean(w, list(SHOW_PARTS))} "
                             f"Parts: {','.join(SHOW_PARTS)} (or all, none).")
    return tuple(p for p in SHOW_PARTS if p in words)


def _trace_out(path: str) -> str:
    """--trace-out's file, checked before the cell runs: not a folder, in a folder that exists, and writable
    (tried by opening it for appending; a file made by the try is removed again)."""
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        example = os.path.join(path, "run.json")
        raise UsageError(f"--trace-out {path!r} is a folder; it takes a file name, e.g. --trace-out {example}.")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"--trace-out: directory {parent!r} does not exist; create it first or pick another path.")
    existed = os.path.lexists(path)
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        raise UsageError(f"--trace-out {path!r} cannot be written: {_os_reason(e)}; pick a file in a folder you "
                         "can write to.") from None
    if not existed:
        try:
            os.remove(path)
        except OSError:
            pass
    return path


def _os_reason(e: BaseException) -> str:
    """The operating system's reason in an OSError (or in the OSError behind a ptort_lab error)."""
    cause = e if isinstance(e, OSError) else e.__cause__
    if isinstance(cause, OSError) and cause.strerror:
        return f"{cause.strerror} (errno {cause.errno})" if cause.errno else cause.strerror
    return getattr(e, "what", None) or str(e).splitlines()[0]


def check_cores(workload: Any, knobs: Knobs, opts: CellOptions, machine: Machine | None = None) -> None:
    """CORES from the namespace (or set by the body) must fit the machine when the data-parallel twin uses it
    (a workload the body dispatched itself runs on its own policy's cores). ``machine``: the one the study runs on
    (default: --machine's, else ascend_910b)."""
    machine = machine or opts.target_machine()
    uses_cores = opts.mode != "pipeline" and (is_pipeline(workload) or workload._schedule.dispatch is None)
    if uses_cores and knobs.cores > machine.num_cores:
        raise PtortValueError(
            f"CORES is {knobs.cores}, but machine '{machine.name}' has {machine.num_cores} AI cores for the "
            "data-parallel run.",
            hint=f"Set CORES = {machine.num_cores} or fewer (or pass --cores {machine.num_cores}); --mode pipeline "
                 "does not use CORES.", locate=False)


def study_options(target: Any, opts: CellOptions) -> dict[str, Any]:
    """The compile options the study adds to the cell's: --machine and --latency. A Program the cell compiled keeps
    its own options; an option that contradicts one of them is refused at the cell's compile line."""
    given = opts.compile_options()
    if not isinstance(target, Program):
        return given
    own = target.options
    flags = {"machine": f"--machine {opts.machine}", "channel_latency_cycles": f"--latency {opts.latency}"}
    for name, value in given.items():
        if name == "machine" and "cost_model" in own:
            raise PtortValueError(
                f"{flags[name]} contradicts the cell's compile(cost_model={own['cost_model']!r}): the program runs on "
                "its own cost model, not on a machine preset.",
                hint="Drop --machine to study the program as the cell compiled it, or compile with machine=... in "
                     "the cell instead of cost_model=.", where=target.loc, locate=False)
        if name in own and not same_option(name, own[name], value):
            shown = get_machine(own[name]).name if name == "machine" and _is_machine(own[name]) else own[name]
            raise PtortValueError(
                f"{flags[name]} contradicts the cell's compile({name}={shown!r}): the cell's program would run one "
                f"way and %%ptort another.",
                hint=f"Drop {flags[name].split()[0]} to study the program as the cell compiled it, or compile without "
                     f"{name}= (then {flags[name].split()[0]} applies).", where=target.loc, locate=False)
    return {name: value for name, value in given.items() if name not in own}


def _is_machine(value: Any) -> bool:
    try:
        get_machine(value)
    except PtortError:
        return False
    return True


def study_machine(target: Any, options: dict[str, Any]) -> Machine | None:
    """The machine the study's runs simulate (None for a Program on a cost model of its own)."""
    if "machine" in options:
        return get_machine(options["machine"])
    if isinstance(target, Program):
        return target.machine  # type: ignore[no-any-return]
    return ascend_910b


def parse_options(args: Any) -> CellOptions:
    """Check everything on the magic line; every problem is a one-line UsageError."""
    opts = CellOptions(mode=args.mode)
    for name in ("depth", "tiles", "cores"):
        value = _positive(getattr(args, name), f"--{name}")
        if value is not None:
            opts.knobs[name] = value
    limit, what = task_limit(opts.mode)
    if opts.knobs.get("tiles", 0) > limit:
        raise UsageError(f"--tiles {opts.knobs['tiles']} is more than the {limit:,} {what} (a tile is at least one "
                         f"task); use --tiles {limit} or fewer (a few thousand show a pipeline's steady state).")
    if args.tile is not None:
        opts.knobs["tile"] = parse_tile(args.tile)
    if args.show is not None:
        opts.show = parse_show(args.show)
    if args.machine is not None:
        if args.machine not in MACHINES:
            raise UsageError(f"unknown machine {args.machine!r}.{_did_you_mean(args.machine, list(MACHINES))} "
                             f"Presets: {', '.join(MACHINES)}.")
        opts.machine = args.machine
    machine = opts.target_machine()
    cores = opts.knobs.get("cores")
    if cores is not None and cores > machine.num_cores:
        raise UsageError(f"--cores {cores} is more than machine '{machine.name}' has ({machine.num_cores} AI cores); "
                         f"use --cores {machine.num_cores} or fewer.")
    opts.latency = _positive(args.latency, "--latency", minimum=0)
    if args.trace_out is not None:
        opts.trace_out = _trace_out(args.trace_out)
    if args.output is not None:
        if not args.output.isidentifier():
            raise UsageError(f"-o takes a Python name to store the result in, got {args.output!r}.")
        opts.output = args.output
    opts.interact = bool(args.interact)
    return opts


def _channels(workload: Any) -> list[Any]:
    return list(workload.fields.get("channels", ())) if is_pipeline(workload) else []


def _channel_location(body: CellBody, channel: Any) -> SourceLocation | None:
    """Where the body made ``channel``: its recorded location if that is in the cell, else the first cell line
    that mentions ``Channel`` and the channel's name in quotes."""
    loc = getattr(channel, "loc", None)
    if loc is not None and is_cell_file(loc.filename):
        return loc  # type: ignore[no-any-return]
    for lineno, text in enumerate(body.source.splitlines(), start=2):
        if "Channel" in text and (f'"{channel.name}"' in text or f"'{channel.name}'" in text):
            return SourceLocation(body.filename, lineno, "<module>", text.strip())
    return None


def check_depth(body: CellBody, workload: Any, depth: int) -> None:
    """An explicit --depth must reach every channel: the body has to build them with ``depth=DEPTH``."""
    wrong = [c for c in _channels(workload) if c.depth != depth]
    if not wrong:
        return
    places = [_channel_location(body, c) for c in wrong]
    listed = ", ".join(f"'{c.name}' has depth {c.depth}" + (f" ({p.filename}:{p.lineno})" if p and i else "")
                       for i, (c, p) in enumerate(zip(wrong, places)))
    raise PtortValueError(
        f"--depth {depth} did not reach the pipeline: channel {listed}.",
        hint="Build channels with depth=DEPTH (the magic sets DEPTH before the cell runs), "
             "e.g. Channel[Tensor](name=\"q\", depth=DEPTH).", where=places[0], locate=False)


def _unknown_option(message: str, parser: Any) -> str:
    """Add "Did you mean --depth?" to argparse's "unrecognized arguments: --dpeth 3"."""
    known = [s for action in parser._actions for s in action.option_strings]
    for word in message.split(":", 1)[-1].split():
        if word.startswith("-"):
            hint = _did_you_mean(word.split("=")[0], known)
            if hint:
                return message + "." + hint
    return message


def _clean_doc(fn: Any) -> Any:
    """Dedent the docstring: magic_arguments turns it into the ``%%ptort?`` help verbatim."""
    fn.__doc__ = inspect.cleandoc(fn.__doc__ or "")
    return fn


@magics_class
class PtortMagics(Magics):
    """The ``%%ptort`` cell magic. ``%config PtortMagics.short_errors = False`` shows Python errors raised in a
    cell (other than ptort_lab's own) with IPython's full traceback."""

    short_errors = Bool(True, help="Show non-ptort_lab errors from a cell as the user's frames only.").tag(config=True)

    @magic_arguments(name="%ptort")  # the help text adds one more %
    @argument("--depth", type=int, metavar="N", help="channel depth (buffer slots); binds DEPTH")
    @argument("--tile", metavar="RxC", help="tile size, e.g. 64x128 (or 128 for a square tile); binds TILE")
    @argument("--tiles", type=int, metavar="N", help="number of tiles; binds TILES")
    @argument("--cores", type=int, metavar="N", help="cores of the data-parallel run; binds CORES")
    @argument("--mode", choices=MODES, default="both",
              help="run the pipeline, its data-parallel twin, or both (default both)")
    @argument("--show", metavar="PARTS",
              help=f"comma list of {','.join(SHOW_PARTS)} (or all, none); default {','.join(DEFAULT_SHOW)}")
    @argument("--machine", metavar="NAME", help=f"machine preset: {', '.join(MACHINES)} (default ascend_910b)")
    @argument("--latency", type=int, metavar="CYCLES",
              help="cross-core channel latency in cycles (default: the machine's)")
    @argument("--trace-out", metavar="FILE.json", help="write the run's Chrome/Perfetto trace to FILE.json")
    @argument("-o", dest="output", metavar="NAME", help="also store the result as NAME (_ptort always has it)")
    @argument("--interact", action="store_true",
              help="show the explorer panel (sliders re-run this cell with new DEPTH/TILE/TILES/CORES)")
    @cell_magic
    @output_can_be_silenced  # a body ending in `;` shows nothing (the result is still in _ptort)
    @_clean_doc
    def ptort(self, line: str, cell: str) -> Any:
        """Run a cell of ptort_lab DSL Python and study the pipeline it builds.

        How options reach the cell
          The body is ordinary Python, run in the notebook namespace (the names it defines stay there). Before
          it runs, the magic binds four names, each to its option's value if given, else to the name's current
          value in the namespace, else to the default:
              DEPTH  int           channel depth                   --depth  (default 2)
              TILE   (rows, cols)  tile size                       --tile   (default (128, 128))
              TILES  int           number of tiles                 --tiles  (default 8)
              CORES  int           cores of the data-parallel run  --cores  (default 4)
          Build the pipeline with them: Channel[Tensor](name="q", depth=DEPTH), Tile[TILE[0], TILE[1], F32],
          range(TILES). They stay bound after the cell, so a later cell without options reuses them. An explicit
          --depth that does not reach every channel of the pipeline is an error. The first line is expanded
          like any magic's ({var} and $var); the body is not.

        Which workload is studied
          The value of the cell's last expression if it is a workload, pipeline or compiled Program; otherwise
          the last one the cell assigned at top level (the last pipeline, if it assigned any). A pipeline runs as
          a pipeline and as its data-parallel twin on CORES cores (--mode picks one or both); any other workload
          runs data-parallel. A Program (`pipe.compile(machine="ascend_910b4")`, also one the cell compiled
          from the studied workload) is studied with its own compile options; --machine or --latency that
          contradict them are refused. Nothing is cached: every run rebuilds and re-simulates.

        Values
          The runs share the cell's tensors, so values are computed once: by the pipeline run (by the
          data-parallel run with --mode data-parallel), the other run is timing-only, and a cell that executed
          its program itself already computed them (every study run is then timing-only). A run that fails
          leaves every tensor as it was.

        Result
          A PtortResult (also in _ptort, and in NAME with -o): a summary (cycles, us, overlap %, speedup) plus
          the parts --show names: diagram (pipeline graph), ir (kernel IR), timeline (both runs on one time
          axis), stats (per-stage busy % and stalls). --trace-out FILE.json writes the first run's trace and,
          with both runs, FILE.data-parallel.json. --interact shows sliders that re-run the body with new
          DEPTH/TILE/TILES/CORES (timing only) and redraw the timelines. A DSL, type or simulation error in the
          cell is reported at its cell line (line 1 is the %%ptort line); a bad option is a one-line usage error.

        Example
          %%ptort --depth 4 --tiles 64 --show diagram,timeline,stats
          pipeline = build_pipeline(depth=DEPTH, tile=TILE, tiles=TILES)
        """
        try:
            args = parse_argstring(self.ptort, line)
        except UsageError as e:
            raise UsageError(_unknown_option(str(e), self.ptort.parser)) from None
        opts = parse_options(args)
        if not cell.strip():
            raise UsageError("%%ptort needs a cell body: DSL Python that builds a pipeline or workload.")
        return self.run(line, cell, opts)

    def run(self, line: str, cell: str, opts: CellOptions) -> Any:
        shell = self.shell
        assert shell is not None
        ns = shell.user_ns
        outer = outer_files()
        body: CellBody | None = None
        workload = None
        target: Any = None
        # With --interact, the sliders' runs replace this one: they first put back what it wrote.
        journal = Writes() if opts.interact else None
        try:
            knobs = knobs_from_namespace(ns, opts.knobs, Knobs())
            check_knob_limits(knobs, opts.mode, "TILES")  # before the body builds 10**8 of anything
            body = CellBody(cell, line, shell.execution_count)
            bind_knobs(ns, knobs)
            with collect_compiled() as compiled, (recording(journal) if journal is not None else nullcontext()):
                value = body.run(ns)
            target = body.find_target(value, ns, compiled)
            workload = target.workload if isinstance(target, Program) else target
            knobs = knobs_from_namespace(ns, {}, knobs)  # the body may have reassigned DEPTH, TILE, ...
            check_knob_limits(knobs, opts.mode, "TILES")
            options = study_options(target, opts)
            check_cores(workload, knobs, opts, study_machine(target, options))
            if "depth" in opts.knobs:
                check_depth(body, workload, opts.knobs["depth"])
            with recording(journal) if journal is not None else nullcontext():
                comparison = run_study(target, knobs, opts.mode, **options)
            result = PtortResult(comparison, workload, show=opts.show)
        except Exception as e:
            fallback = workload.loc if workload is not None and workload.loc is not None \
                and is_cell_file(workload.loc.filename) else None
            current = body.filename if body else getattr(getattr(e, "where", None), "filename", None)
            raise relocate(e, current, outer, fallback, short=self.short_errors) from None
        ns["_ptort"] = result
        if opts.output:
            ns[opts.output] = result
        if opts.trace_out:
            written = self._save_trace(result, opts.trace_out, body, line, outer)
            print("Wrote " + ", ".join(f"{path} ({label})" for label, path in written))
        if opts.interact:
            return self._explorer(body, line, opts, knobs, target, journal)
        return result

    def _save_trace(self, result: PtortResult, path: str, body: CellBody, line: str,
                    outer: frozenset[str]) -> list[Any]:
        """Write --trace-out; a failure names the option and the system's reason, at the %%ptort line."""
        try:
            return result.save_trace(path)
        except (OSError, PtortError) as e:
            at = SourceLocation(body.filename, 1, "<module>", f"%%ptort {line}".strip())
            error = PtortValueError(f"--trace-out {path!r}: the trace could not be written: {_os_reason(e)}.",
                                    hint="Pick a file in a folder you can write to (the run itself succeeded: "
                                         "the result is in _ptort).", where=at, locate=False)
            raise relocate(error, body.filename, outer, short=self.short_errors) from e

    def _explorer(self, body: CellBody, line: str, opts: CellOptions, knobs: Knobs, target: Any,
                  journal: Writes | None) -> Any:
        from .widgets import Explorer
        shell = self.shell
        assert shell is not None

        def rebuild(depth: int, tile: tuple[int, int], tiles: int, cores: int) -> Any:
            ns = dict(shell.user_ns)  # the live namespace, copied: moving a slider leaves the user's names alone
            outer = outer_files()
            try:
                bind_knobs(ns, Knobs(depth, tile, tiles, cores))
                return body.find_workload(body.run(ns), ns)
            except Exception as e:
                raise relocate(e, body.filename, outer, short=self.short_errors) from None

        # The sliders re-run the body timing-only, with the options the first run used (the cell's program's own).
        own = dict(target.options) if isinstance(target, Program) else {}
        options = {**own, **study_options(target, opts), "compute_values": False}
        study = Study(rebuild, knobs, opts.mode, **options)
        if journal is not None:
            study.adopt(journal)
        return Explorer(study)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext ptort_lab``: register ``%%ptort``."""
    magics = PtortMagics(shell=ipython)
    ipython.register_magics(magics)
    if magics not in ipython.configurables:  # so that %config PtortMagics.short_errors = False works
        ipython.configurables.append(magics)


__all__ = ["PtortMagics", "CellOptions", "load_ipython_extension", "parse_options", "parse_tile", "parse_show",
           "check_depth", "check_cores"]
