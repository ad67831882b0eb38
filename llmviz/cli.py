"""Command-line parsing, and the headless `export` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .core.bundled import DEFAULT_MODEL
from .core.specs import DEVICES, DTYPES

DESCRIPTION = "llmviz: look inside transformer language models."
DEBUG_ENV = "LLMVIZ_DEBUG"
EPILOG = """examples:
  python -m llmviz                                  open the app on the bundled SmolLM2
  python -m llmviz --model bundled:minilm --text "The cat sat on the mat"
  python -m llmviz --model gpt2 --device cuda       a hub model (needs the internet once)
  python -m llmviz --text-file essay.txt --screenshot shot.png --dock attention
  python -m llmviz --presentation --lesson builtin --step 5
  python -m llmviz --lesson builtin --export-pdf handout.pdf
  python -m llmviz export --model bundled:smollm2 --text "Hello" --out out/
  python -m llmviz explain --text "The capital of France is" --target=-1 --method ig,gxi --out why/
"""


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1600x1000, got {value!r}") from None
    if not (200 <= w <= 10000 and 200 <= h <= 10000):
        raise argparse.ArgumentTypeError("width and height must be between 200 and 10000 pixels")
    return w, h


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bytes, got {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of bytes")
    return n


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="ID",
                   help=f"bundled:smollm2 | bundled:minilm | a Hugging Face id (gpt2) | a folder | a .gguf file "
                        f"(default: {DEFAULT_MODEL})")
    text = p.add_mutually_exclusive_group()
    text.add_argument("--text", help="the text to run through the model")
    text.add_argument("--text-file", metavar="PATH", help="read the text from a UTF-8 file (for long inputs)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="weights dtype (auto: float32 on CPU)")
    p.add_argument("--max-text-bytes", type=_positive_int, metavar="N",
                   help="read at most N bytes of --text-file (default 4 MiB, or $LLMVIZ_MAX_TEXT_BYTES); "
                        "'-' reads standard input")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow this model's own Python code (only for authors you trust)")


def app_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m llmviz", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_args(p)
    p.add_argument("--screenshot", metavar="FILE.png",
                   help="load, run, wait until the views have drawn, save the window as PNG and exit")
    p.add_argument("--dock", metavar="NAME",
                   help="with --screenshot: save only this dock, on its own at the shot's size (see --list-docks)")
    p.add_argument("--size", type=_size, metavar="WxH", help="window (or, with --dock, dock) size for the shot, e.g. 1600x1000")
    p.add_argument("--list-docks", action="store_true", help="print the dock names and exit")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="with --screenshot: give up after S seconds (default 600)")
    classroom = p.add_argument_group("classroom")
    classroom.add_argument("--presentation", action="store_true",
                           help="start in presentation mode (one view fills the window, large text; F5/Esc leave)")
    classroom.add_argument("--lesson", metavar="FILE|builtin",
                           help="open a lesson file (see docs/lessons.md) or the built-in 'LLM Fundamentals'")
    classroom.add_argument("--step", type=int, default=1, metavar="N", help="with --lesson: start at step N (from 1)")
    classroom.add_argument("--session", metavar="FILE.json", help="open a saved session (model, text, layout, views)")
    classroom.add_argument("--export-pdf", metavar="OUT.pdf",
                           help="with --lesson: write a handout, one page per step, and exit (works with no display)")
    p.add_argument("--quit-when-shown", action="store_true", help=argparse.SUPPRESS)
    return p


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m llmviz export",
        description="Run a text through a model without opening a window and write model.json, tokens.csv "
                    "and attention.npz (float32 [layers, heads, T, T]) into --out.")
    _model_args(p)
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output folder (created; checked before the model loads)")
    p.add_argument("--layers", metavar="LIST", help="only these layers in attention.npz, e.g. 0,3,10-12")
    p.epilog = ("Exit status: 0 written; 1 refused or failed, with one message and nothing written; "
                "2 bad arguments; 3 a damaged installation; 70 an internal error (set LLMVIZ_DEBUG=1 for "
                "its traceback); 130/143 ended by SIGINT/SIGTERM.")
    return p


def read_text_arg(args: argparse.Namespace) -> str | None:
    """The text from --text or --text-file (InputError for unreadable, oversized or non-UTF-8 input)."""
    if getattr(args, "text_file", None):
        from .core.textio import LIMIT_ENV, read_text_file

        return read_text_file(args.text_file, limit=getattr(args, "max_text_bytes", None),
                              raise_hint=f"pass --max-text-bytes N or set {LIMIT_ENV}=N")
    return args.text


class _Progress:
    """One progress line on stderr, rewritten in place; messages start on a line of their own."""

    def __init__(self) -> None:
        self.open = False

    def __call__(self, p: Any) -> None:
        pct = f" {p.fraction * 100:3.0f}%" if p.fraction is not None else ""
        self.open = True  # first: a signal may interrupt the print itself
        print(f"\r{p.stage}{pct}".ljust(70), end="", file=sys.stderr, flush=True)

    def end_line(self) -> None:
        if self.open:
            print(file=sys.stderr, flush=True)
            self.open = False

    def say(self, prefix: str, message: str) -> None:
        """One paragraph: `prefix: message`, blank lines removed."""
        self.end_line()
        lines = [line for line in str(message).splitlines() if line.strip()] or [""]
        print(f"{prefix}: " + "\n".join(lines), file=sys.stderr, flush=True)


class _Notes(logging.Handler):
    """Core's warnings (e.g. a damaged cache being converted again) as `note:` lines."""

    def __init__(self, progress: _Progress) -> None:
        super().__init__(logging.WARNING)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.say("note", record.getMessage())


def run_command(parser: argparse.ArgumentParser, argv: list[str],
                body: Callable[[argparse.Namespace, _Progress], int]) -> int:
    """One headless command: 0 written, 1 refused or failed (one message), 2 bad usage,
    3 a damaged installation, 70 an internal error, 130/143 ended by SIGINT/SIGTERM; never
    a partial output. Core's warnings show as `note:` lines while `body` runs."""
    from .core.errors import LlmvizError, RemoteCodeRefused
    from .core.lifecycle import Interrupted, signals_raise_interrupted

    progress = _Progress()
    with signals_raise_interrupted():
        try:
            args = parser.parse_args(argv)
            notes = _Notes(progress)
            logging.getLogger("llmviz").addHandler(notes)
            try:
                return body(args, progress)
            except RemoteCodeRefused as exc:
                progress.say("error", exc.for_command_line())
            except LlmvizError as exc:
                progress.say("error", str(exc))
            except Exception as exc:  # noqa: BLE001 - each kind below ends in one paragraph
                return _unexpected(exc, progress)
            finally:
                logging.getLogger("llmviz").removeHandler(notes)
            return 1
        except Interrupted as exc:
            progress.say("llmviz", f"stopped by {exc.name}; no partial output was left.")
            return exc.exit_code


def checked_text(args: argparse.Namespace, command: str, progress: _Progress) -> str | None:
    """The pre-flight checks every command shares, before any model work: the --out folder,
    then the text. None: no text was given (said; exit status 2); LlmvizError for the rest."""
    from .core.atomic import check_output_folder
    from .core.errors import InputError, LlmvizError

    try:
        check_output_folder(args.out)
    except LlmvizError as exc:
        raise type(exc)(f"--out: {exc}") from None
    text = read_text_arg(args)
    if text is None:
        progress.say(command, "give --text or --text-file")
        return None
    if not text:
        raise InputError("The text is empty; give some text with --text or --text-file.")
    return text


def run_export(argv: list[str]) -> int:
    """`python -m llmviz export` (exit statuses: see run_command)."""
    return run_command(export_parser(), argv, _checked_export)


def _checked_export(args: argparse.Namespace, progress: _Progress) -> int:
    from .core.export import layer_ranges

    ranges = layer_ranges(args.layers)  # all argument checks before any model work
    text = checked_text(args, "export", progress)
    if text is None:
        return 2
    return _export(args, text, ranges, progress)


def _unexpected(exc: Exception, progress: _Progress) -> int:
    """A damaged installation (3), no memory or a failed file operation (1), or a bug (70)."""
    from .core.atomic import os_reason
    from .core.errors import out_of_memory_message
    from .core.import_failure import import_failure_message

    damaged = import_failure_message(exc)
    if damaged is not None:
        progress.say("llmviz", damaged)
        return 3
    memory = out_of_memory_message(exc, "export")
    if memory is not None:
        progress.say("error", memory)
        return 1
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        progress.say("error", f"export: {os_reason(exc)}{where}.")
        return 1
    progress.say("error", f"internal error: {type(exc).__name__}: {str(exc).strip() or 'no details'}. "
                 f"This is a bug in llmviz; set {DEBUG_ENV}=1 to see where it happened.")
    if os.environ.get(DEBUG_ENV):
        traceback.print_exception(exc, file=sys.stderr)
    return 70


def run_text(session: Any, title: str, text: str, ctx: Any, progress: _Progress) -> Any:
    """The loaded model's trace of `text`; a note when the model cut the text, an error when
    no token is left."""
    from .core.export import check_has_tokens

    trace = session.run(text, ctx)
    progress.end_line()
    if trace.truncated_from:
        progress.say("note", f"the text has {trace.truncated_from} tokens; {title} accepts {trace.num_tokens}, "
                     f"so the first {trace.num_tokens} were used.")
    check_has_tokens(trace)
    return trace


def _export(args: argparse.Namespace, text: str, ranges: list[tuple[int, int]] | None, progress: _Progress) -> int:
    from .core.config_check import ConfigFigures
    from .core.export import resolve_layers, write_export
    from .core.session import Session
    from .core.specs import ModelSpec
    from .core.tasks import TaskContext

    def check(figures: ConfigFigures) -> None:
        """--layers against the model's layer count, as soon as the configuration is read."""
        if figures.num_layers is not None:
            resolve_layers(ranges, figures.num_layers)

    ctx = TaskContext(report=progress, min_interval_s=0.2)
    session = Session()
    info = session.load(ModelSpec(args.model, args.device, args.dtype, args.trust_remote_code), ctx, check=check)
    trace = run_text(session, info.title, text, ctx, progress)
    layers = resolve_layers(ranges, info.num_layers)
    paths = write_export(info, trace, args.out, layers, ctx)
    progress.end_line()
    for path in paths:
        print(path)
    return 0
