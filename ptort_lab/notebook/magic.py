"""``%%ptort``: run a cell of DSL Python, study the pipeline it builds (and its data-parallel twin), return a
PtortResult. ``%load_ext ptort_lab`` registers it."""
from __future__ import annotations

import difflib
import inspect
import keyword
import os
import shlex
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Protocol, TypeVar

from IPython.core import magic_arguments as _magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class, output_can_be_silenced
from traitlets import Bool

from ..dsl import Channel, Workload
from ..dsl.csp import MAX_DEPTH, int_text
from ..errors import PtortError, PtortValueError, SourceLocation, raise_user_error, traceback_location
from ..explore import (
    MODES,
    Comparison,
    Knobs,
    KnobWords,
    Study,
    check_cores,
    check_depth,
    is_pipeline,
    pipeline_channels,
    run_study,
    same_option,
)
from ..knobs import cell_tile_limit, check_cell_tiles, task_limit
from ..program import Program, collect_compiled
from ..sim.export import special_file
from ..sim.machine import MACHINES, Machine, ascend_910b, get_machine
from ..sim.numerics import Writes
from ..sim.runner import recording
from .cell import (
    KNOB_NAMES,
    CellBody,
    bind_knobs,
    interrupted,
    is_cell_file,
    knobs_from_namespace,
    outer_files,
    relocate,
    restore_knobs,
    saved_knobs,
    tile_from_text,
)
from .display import DEFAULT_SHOW, SHOW_PARTS, PtortResult

if TYPE_CHECKING:
    from .widgets import Explorer  # imported when --interact asks for it: ipywidgets is slow to load

_F = TypeVar("_F", bound=Callable[..., Any])


class _Decorator(Protocol):
    def __call__(self, fn: _F, /) -> _F: ...


# IPython's magic_arguments module has no annotations; these typed names for it keep the magic's own types.
magic_arguments: Callable[..., _Decorator] = _magic_arguments.magic_arguments
argument: Callable[..., _Decorator] = _magic_arguments.argument


def parse_words(magic_func: Any, words: list[str]) -> Any:
    """Parse already-split option words with the magic's argument parser (its ``parse_argstring`` would split). An
    option given twice is refused: argparse would keep the last one without a word. Options are spelled in full
    (argparse's abbreviations are off: ``--dep`` is an unknown option, never a second ``--depth``); a short option's
    value may be attached (``-ob``, ``-o=b``), and then counts as that option."""
    parser = magic_func.parser
    parser.allow_abbrev = False  # (MagicArgumentParser takes no allow_abbrev=; argparse reads the attribute)
    dest_of = {s: action.dest for action in parser._actions for s in action.option_strings}
    seen: dict[str, str] = {}
    for word in words:
        flag = word.split("=", 1)[0]
        if flag not in dest_of and len(word) > 2 and word[0] == "-" and word[1] != "-" and word[:2] in dest_of:
            flag = word[:2]  # -ob: -o with its value attached
        dest = dest_of.get(flag)
        if dest is None:
            continue
        if dest in seen:
            raise UsageError(f"%%ptort got {seen[dest]} and {flag}: the same option twice (only the last would "
                             "count); give it once.")
        seen[dest] = flag
    return parser.parse_args(words)

# How a cell's messages name the knobs: the namespace variables the magic binds (CORES = 4), and the options.
CELL_WORDS = KnobWords(given="{NAME} = {value}", setting="{NAME} = {value}, or --{name} {value}", variable="{NAME}")
OPTION_WORDS = KnobWords(given="--{name} {value}", setting="--{name} {value}", variable="{NAME}")


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


def _at_least(value: int | None, option: str, minimum: int = 1) -> int | None:
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
    """``"diagram,ir"`` -> ("diagram", "ir"); also ``all`` and ``none``, each on its own."""
    words = list(dict.fromkeys(w.strip().lower() for w in text.split(",") if w.strip()))  # all,all means all
    if not words:
        raise UsageError(f"--show got no part in {text!r}; name the parts to show, e.g. --show diagram,timeline, or "
                         "--show none for the summary only.")
    if words == ["all"]:
        return SHOW_PARTS
    if words == ["none"]:
        return ()
    for alone, means in (("none", "the summary only"), ("all", "every part")):
        if alone in words:
            others = ",".join(w for w in words if w not in ("all", "none"))
            parts = f", or list the parts to show: --show {others}" if others else ""  # never an empty --show
            raise UsageError(f"--show {alone} ({means}) stands alone, got --show {','.join(words)}; use --show "
                             f"{alone}{parts}.")
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
    if "\x00" in path:
        raise UsageError(f"--trace-out {path!r} holds a NUL character, which no file name may contain; pick a file "
                         "name like --trace-out run.json.")
    special = special_file(path)
    if special is not None:  # opening a pipe would block until someone reads it, before the cell even runs
        raise UsageError(f"--trace-out {path!r} is {special}, not a regular file; pick a file name like --trace-out "
                         "run.json.")
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


def study_options(target: Workload | Program, opts: CellOptions) -> dict[str, Any]:
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


def parse_options(args: Any) -> CellOptions:
    """Check everything on the magic line; every problem is a one-line UsageError."""
    opts = CellOptions(mode=args.mode)
    for name in ("depth", "tiles", "cores"):
        value = _at_least(getattr(args, name), f"--{name}")
        if value is not None:
            opts.knobs[name] = value
    if opts.knobs.get("depth", 0) > MAX_DEPTH:
        raise UsageError(f"--depth must be at most 2**53 = {MAX_DEPTH:,} (buffer slots per channel), got "
                         f"{int_text(opts.knobs['depth'])}; a few is typical, e.g. --depth 4.")
    limit, what = cell_tile_limit(opts.mode)
    if opts.knobs.get("tiles", 0) > limit:
        why = " (a tile is at least one task)" if limit == task_limit(opts.mode)[0] else ""
        raise UsageError(f"--tiles {opts.knobs['tiles']} is more than the {limit:,} {what}{why}; use --tiles {limit} "
                         "or fewer (a few thousand show a pipeline's steady state).")
    if args.tile is not None:
        opts.knobs["tile"] = parse_tile(args.tile)
    if args.show is not None:
        opts.show = parse_show(args.show)
    if args.machine is not None:
        if args.machine not in MACHINES:
            raise UsageError(f"unknown machine {args.machine!r}.{_did_you_mean(args.machine, list(MACHINES))} "
                             f"Presets: {', '.join(MACHINES)}.")
        opts.machine = args.machine
    if "cores" in opts.knobs and opts.mode != "pipeline":
        try:  # the rule the study applies again (to CORES, which the body may set), refused here before the body
            check_cores(opts.knobs["cores"], opts.target_machine(), OPTION_WORDS)
        except PtortValueError as e:
            raise UsageError(f"{e.what} {e.hint}") from None
    opts.latency = _at_least(args.latency, "--latency", minimum=0)
    if args.trace_out is not None:
        opts.trace_out = _trace_out(args.trace_out)
    if args.output is not None:
        opts.output = _output_name(args.output)
    opts.interact = bool(args.interact)
    return opts


def _out_of_memory(stage: str, body: CellBody | None, line: str, opts: CellOptions) -> PtortValueError:
    """The short error of a cell that ran out of host memory (a MemoryError's traceback through numpy or the
    simulator says nothing a user can act on), at the %%ptort line."""
    at = SourceLocation(body.filename, 1, "<module>", f"%%ptort {line}".strip()) if body is not None else None
    tiles = opts.knobs.get("tiles")
    smaller = f"fewer tiles than --tiles {tiles}" if tiles else "fewer tiles (--tiles N)"
    return PtortValueError(f"%%ptort ran out of host memory {stage}.",
                           hint=f"Use {smaller} or smaller ones (--tile), or compile the kernels timing-only "
                                "(compute_values=False), which keeps no tensor values. The cell stored no result: "
                                "_ptort, DEPTH, TILE, TILES and CORES are as before it.", where=at, locate=False)


# Names IPython keeps in the notebook's namespace, and what it keeps there: a result stored in one breaks the notebook
# (-o get_ipython: every later magic fails), or is overwritten by the next output.
_IPYTHON_NAMES = {
    "get_ipython": "get_ipython (every magic calls it)",
    "In": "the input history in In",
    "Out": "the output history in Out",
    **dict.fromkeys(("_", "__", "___"), "the last outputs in _, __ and ___"),
    "exit": "exit (it ends the kernel)",
    "quit": "quit (it ends the kernel)",
}
_IPYTHON_PREFIXES = (("_dh", "the folder history in _dh"),
                     ("_i", "the input history in _i, _ii, _iii, _ih and _i<N>"),
                     ("_o", "the output history in _oh and _<N>"))


def _ipython_keeps(name: str) -> str | None:
    """What IPython keeps in ``name`` (see _IPYTHON_NAMES), or None."""
    if name in _IPYTHON_NAMES:
        return _IPYTHON_NAMES[name]
    if name[:1] == "_" and name[1:].isdigit():
        return "the output history in _oh and _<N>"
    return next((what for prefix, what in _IPYTHON_PREFIXES if name.startswith(prefix)), None)


def _output_name(name: str) -> str:
    """-o's name: a Python name the notebook can use, not one of the knobs the next cell reads, nor one IPython or
    Python keeps in the namespace."""
    if not name.isidentifier():
        raise UsageError(f"-o takes a Python name to store the result in, got {name!r}.")
    if keyword.iskeyword(name):
        raise UsageError(f"-o {name}: {name!r} is a Python keyword, so no code could read the result from it; pick "
                         f"another name, e.g. -o {name}_result.")
    if name in KNOB_NAMES.values():
        raise UsageError(f"-o {name}: the magic binds {name} for the cells (a knob, read again by the next %%ptort "
                         f"cell), so the result cannot be stored there; pick another name, e.g. -o result.")
    kept = _ipython_keeps(name)
    if kept is not None:
        raise UsageError(f"-o {name}: IPython keeps {kept}, so storing the result there would break the notebook; "
                         "pick another name, e.g. -o result.")
    if len(name) > 4 and name.startswith("__") and name.endswith("__"):
        raise UsageError(f"-o {name}: names that begin and end with __ are Python's own (the notebook's namespace "
                         "needs some, such as __builtins__), so storing the result there could break the notebook; "
                         "pick another name, e.g. -o result.")
    return name


def channel_location(body: CellBody, channel: Channel[Any]) -> SourceLocation | None:
    """Where the body made ``channel``: its recorded location if that is in the cell, else the first cell line
    that mentions ``Channel`` and the channel's name in quotes."""
    loc = channel.loc
    if loc is not None and is_cell_file(loc.filename):
        return loc
    for lineno, text in enumerate(body.source.splitlines(), start=2):
        if "Channel" in text and (f'"{channel.name}"' in text or f"'{channel.name}'" in text):
            return SourceLocation(body.filename, lineno, "<module>", text.strip())
    return None


def cell_words(body: CellBody, words: KnobWords = CELL_WORDS) -> KnobWords:
    """``words`` that find a channel in the cell's text when its recorded place is not in the cell."""
    return replace(words, locate=lambda channel: channel_location(body, channel))


def _unknown_option(message: str, magic: Any) -> str:
    """Add "Did you mean --depth?" to argparse's "unrecognized arguments: --dpeth 3" (``magic``: a function that
    magic_arguments gave a ``parser``; argparse lists its options only in the private ``_actions``)."""
    known = [s for action in magic.parser._actions for s in action.option_strings]
    for word in message.split(":", 1)[-1].split():
        if word.startswith("-"):
            hint = _did_you_mean(word.split("=")[0], known)
            if hint:
                return message + "." + hint
    return message


def without_comment(line: str) -> str:
    """The magic line up to a ``#`` that starts a word outside quotes: a comment, as in a shell (a ``#`` inside a
    word or in quotes, as in --trace-out run#1.json, is kept)."""
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote is not None:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


# The options whose values are sizes or counts (never negative), and an example of each.
_NUMBER_OPTIONS = {"--depth": "2", "--tile": "64x128", "--tiles": "8", "--cores": "4", "--latency": "1000"}


def _dash_value(message: str, words: list[str]) -> str:
    """Explain argparse's "argument --tile: expected one argument" when the value was there but starts with '-'
    (argparse reads --tile -4x4 as two options)."""
    flag = message.removeprefix("argument ").split(":", 1)[0].split("/")[0]
    if not message.endswith("expected one argument") or flag not in words:
        return message
    i = words.index(flag)
    if i + 1 >= len(words) or not words[i + 1].startswith("-"):
        return message
    value = words[i + 1]
    if flag in _NUMBER_OPTIONS:
        example = value.lstrip("-") if flag == "--tile" and tile_from_text(value.lstrip("-")) else _NUMBER_OPTIONS[flag]
        return (f"{message}: {value} starts with '-', so it reads as an option; a {flag} value is never negative: "
                f"e.g. {flag} {example}.")
    return f"{message}: {value} starts with '-', so it reads as an option; write {flag}={value} to pass it."


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
          like any magic's ({var} and $var); the body is not. A # that starts a word ends the options, as in a
          shell: %%ptort --depth 4  # deeper buffers.

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
          A PtortResult (also in _ptort, and in NAME with -o): a summary (cycles, us, overlap %, speedup; its
          knobs line names only the knobs the cell reads, and CORES when a data-parallel run used them) plus
          the parts --show names: diagram (pipeline graph), ir (kernel IR), timeline (both runs on one time
          axis), stats (per-stage busy % and stalls). --trace-out FILE.json writes the first run's trace and,
          with both runs, FILE.data-parallel.json. --interact shows sliders that re-run the body with new
          DEPTH/TILE/TILES/CORES (timing only) and redraw the timelines. A DSL, type or simulation error in the
          cell is reported at its cell line (line 1 is the %%ptort line); a bad option is a one-line usage error.
          Ctrl-C stops the cell with a one-line KeyboardInterrupt saying what it interrupted.

        Example
          %%ptort --depth 4 --tiles 64 --show diagram,timeline,stats
          pipeline = build_pipeline(depth=DEPTH, tile=TILE, tiles=TILES)
        """
        try:
            # shlex in POSIX mode, not IPython's arg_split: it removes the quotes around a value, so
            # --trace-out "my run.json" names the file my run.json (arg_split would keep the quote characters)
            words = shlex.split(without_comment(line))
        except ValueError as e:  # shlex: an unbalanced quote ("No closing quotation"), a lone escape
            raise UsageError(f"%%ptort options could not be split into words: {e} in {line.strip()!r}; close the "
                             "quote (or drop it: options need none, e.g. --depth 2).") from None
        try:
            args = parse_words(self.ptort, words)
        except UsageError as e:
            raise UsageError(_dash_value(_unknown_option(str(e), self.ptort), words)) from None
        opts = parse_options(args)
        if not cell.strip():
            raise UsageError("%%ptort needs a cell body: DSL Python that builds a pipeline or workload.")
        return self.run(line, cell, opts)

    def run(self, line: str, cell: str, opts: CellOptions) -> PtortResult | Explorer:
        shell = self.shell
        assert shell is not None
        ns = shell.user_ns
        outer = outer_files()
        body: CellBody | None = None
        workload: Workload | None = None
        target: Workload | Program | None = None
        # With --interact, the sliders' runs replace this one: they first put back what it wrote.
        journal = Writes() if opts.interact else None
        knobs_before = saved_knobs(ns)  # a failed cell puts these back: the next cell must not inherit its options
        stage = "before running the cell body"  # what an interrupt stopped (Ctrl-C in a long cell)
        try:
            knobs = knobs_from_namespace(ns, opts.knobs, Knobs())
            check_cell_tiles(knobs, opts.mode)  # before the body builds 10**8 of anything
            body = CellBody(cell, line, shell.execution_count)
            bind_knobs(ns, knobs)
            stage = "while running the cell body"
            with collect_compiled() as compiled, (recording(journal) if journal is not None else nullcontext()):
                value = body.run(ns)
            stage = "after the cell body, before the runs"
            target = body.find_target(value, ns, compiled)
            workload = target.workload if isinstance(target, Program) else target
            knobs = knobs_from_namespace(ns, {}, knobs)  # the body may have reassigned DEPTH, TILE, ...
            check_cell_tiles(knobs, opts.mode)
            options = study_options(target, opts)
            if "depth" in opts.knobs:  # only an explicit --depth: a cell may build its channels with literal depths
                check_depth(pipeline_channels(workload), opts.knobs["depth"], cell_words(body, OPTION_WORDS))
            stage = f"while simulating {_RUNS[opts.mode] if is_pipeline(workload) else _RUNS['data-parallel']}"
            with recording(journal) if journal is not None else nullcontext():
                comparison = run_study(target, knobs, opts.mode, words=CELL_WORDS, **options)
            comparison.built_with = body_knobs(body, ns, opts)
            _note_unused_options(comparison, opts)
            result = PtortResult(comparison, workload, show=opts.show)
        except KeyboardInterrupt as e:
            restore_knobs(ns, knobs_before)
            raise interrupted(e, f"%%ptort interrupted {stage}", body, "The cell stored no result: _ptort, DEPTH, "
                              "TILE, TILES and CORES are as before it.", short=self.short_errors) from None
        except MemoryError as e:
            e.__traceback__ = None  # its frames hold what filled the memory: let it go before building the message
            del e
            value = target = workload = None
            restore_knobs(ns, knobs_before)
            error = _out_of_memory(stage, body, line, opts)
            raise relocate(error, body.filename if body else None, outer, short=self.short_errors) from None
        except Exception as e:
            restore_knobs(ns, knobs_before)
            fallback = workload.loc if workload is not None and workload.loc is not None \
                and is_cell_file(workload.loc.filename) else None
            current = body.filename if body else getattr(getattr(e, "where", None), "filename", None)
            raise relocate(e, current, outer, fallback, short=self.short_errors) from None
        ns["_ptort"] = result
        if opts.output:
            ns[opts.output] = result
        if opts.trace_out:
            try:
                written = self._save_trace(result, opts.trace_out, body, line, outer)
            except KeyboardInterrupt as e:
                raise interrupted(e, f"%%ptort interrupted while writing --trace-out {opts.trace_out}", None,
                                  "The runs themselves finished: the result is in _ptort.",
                                  short=self.short_errors) from None
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
            kept = "the run itself succeeded: the result is in _ptort"
            own_hint = getattr(e, "hint", None)
            if isinstance(e, OSError) or isinstance(e.__cause__, OSError) or not own_hint:
                hint = f"Pick a file in a folder you can write to ({kept})."
            else:  # not the file's fault (a trace the format cannot hold): the error's own fix
                hint = f"{own_hint} ({kept[0].upper() + kept[1:]}.)"
            reason = _os_reason(e).rstrip(".")
            error = PtortValueError(f"--trace-out {path!r}: the trace could not be written: {reason}.",
                                    hint=hint, where=at, locate=False)
            raise relocate(error, body.filename, outer, short=self.short_errors) from e

    def _explorer(self, body: CellBody, line: str, opts: CellOptions, knobs: Knobs, target: Workload | Program,
                  journal: Writes | None) -> Explorer:
        from .widgets import Explorer
        shell = self.shell
        assert shell is not None

        read = body_knobs(body, shell.user_ns, opts)

        def rebuild(depth: int, tile: tuple[int, int], tiles: int, cores: int) -> Workload:
            ns = dict(shell.user_ns)  # the live namespace, copied: moving a slider leaves the user's names alone
            outer = outer_files()
            knobs = Knobs(depth, tile, tiles, cores)
            try:
                bind_knobs(ns, knobs)
                return body.find_workload(body.run(ns), ns)
            except Exception as e:
                # The panel names what the user did (moved a slider, so the body re-ran), not this closure.
                try:
                    raise_user_error(e, f"re-running the cell body with {_knob_names_text(knobs, read)}",
                                     _rerun_hint(e))
                except PtortError as error:
                    raise relocate(error, body.filename, outer, short=self.short_errors) from error.__cause__


        # The sliders re-run the body timing-only, with the options the first run used (the cell's program's own).
        own = dict(target.options) if isinstance(target, Program) else {}
        options = {**own, **study_options(target, opts), "compute_values": False}
        study = CellStudy(body, self.short_errors, read, rebuild, knobs, opts.mode,
                          words=cell_words(body), **options)
        if journal is not None:
            study.adopt(journal)
        return Explorer(study)


class CellStudy(Study):
    """The study behind a cell's --interact panel: its errors (the body's, and the study's checks and runs) name
    cell lines, as the cell's own run does."""

    def __init__(self, body: CellBody, short_errors: bool, read: tuple[str, ...], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body = body
        self.short_errors = short_errors
        self.read = read  # the knobs the cell reads: its summaries show these (the rebuild takes all four)

    def run(self, **changes: Any) -> Comparison:
        outer = outer_files()
        try:
            result = super().run(**changes)
        except Exception as e:
            raise relocate(e, self.body.filename, outer, short=self.short_errors) from None
        result.built_with = self.read
        return result


# What a cell's study simulates, by --mode (for the message of an interrupted cell).
_RUNS = {"both": "the pipeline and its data-parallel twin", "pipeline": "the pipeline",
         "data-parallel": "the data-parallel run"}


def body_knobs(body: CellBody, namespace: dict[str, Any], opts: CellOptions) -> tuple[str, ...]:
    """The knobs a cell's work was built with: those it reads, and an explicit --depth (the study checked that it
    reached every channel, so a cell that builds with the same literal depth used it too)."""
    read = body.knobs_read(namespace) | ({"depth"} if "depth" in opts.knobs else set())
    return tuple(n for n in KNOB_NAMES if n in read)


def _knob_names_text(knobs: Knobs, read: tuple[str, ...]) -> str:
    """``TILES=128`` (the knobs the cell reads, as the names it reads them by; all four if it reads none)."""
    return ", ".join(f"{KNOB_NAMES[n]}={getattr(knobs, n)!r}" for n in (read or tuple(KNOB_NAMES)))


def _rerun_hint(e: Exception) -> str:
    """The hint of a slider rerun that failed in the cell's own line (a panel has no __cause__ to look at); ""
    (the usual hint, naming the library frame) when it failed deeper."""
    where, raised_in = traceback_location(e)
    if where is not None and raised_in is not None and (where.filename, where.lineno) == raised_in[:2]:
        return "Fix that line of the cell, or move the slider back to a value it accepts."
    return ""


def _note_unused_options(comparison: Comparison, opts: CellOptions) -> None:
    """Say in the summary which options the cell was given but did not use (a cell that builds its own tiles)."""
    unused = []
    for name, value in opts.knobs.items():
        if name in comparison.used:
            continue
        shown = f"{value[0]}x{value[1]}" if name == "tile" else value
        why = f"the cell does not read {KNOB_NAMES[name]}"
        if name == "cores":
            why += " and --mode pipeline runs no data-parallel twin"
        unused.append(f"--{name} {shown} was not used: {why}")
    comparison.note = "; ".join(([comparison.note] if comparison.note else []) + unused)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext ptort_lab``: register ``%%ptort``."""
    magics = PtortMagics(shell=ipython)
    ipython.register_magics(magics)
    if magics not in ipython.configurables:  # so that %config PtortMagics.short_errors = False works
        ipython.configurables.append(magics)


__all__ = ["PtortMagics", "CellOptions", "load_ipython_extension", "parse_options", "parse_tile", "parse_show",
           "channel_location", "cell_words", "CELL_WORDS", "OPTION_WORDS"]
