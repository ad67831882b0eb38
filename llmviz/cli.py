"""Command-line parsing, and the headless `export` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .core.bundled import DEFAULT_MODEL
from .core.specs import DEVICES, DTYPES

DESCRIPTION = "llmviz: look inside transformer language models."
EPILOG = """examples:
  python -m llmviz                                  open the app on the bundled SmolLM2
  python -m llmviz --model bundled:minilm --text "The cat sat on the mat"
  python -m llmviz --model gpt2 --device cuda       a hub model (needs the internet once)
  python -m llmviz --text-file essay.txt --screenshot shot.png --dock attention
  python -m llmviz export --model bundled:smollm2 --text "Hello" --out out/
"""


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1600x1000, got {value!r}") from None
    if not (200 <= w <= 10000 and 200 <= h <= 10000):
        raise argparse.ArgumentTypeError("width and height must be between 200 and 10000 pixels")
    return w, h


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="ID",
                   help=f"bundled:smollm2 | bundled:minilm | a Hugging Face id (gpt2) | a folder | a .gguf file "
                        f"(default: {DEFAULT_MODEL})")
    text = p.add_mutually_exclusive_group()
    text.add_argument("--text", help="the text to run through the model")
    text.add_argument("--text-file", metavar="PATH", help="read the text from a UTF-8 file (for long inputs)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto (CUDA if available), cpu or cuda")
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="weights dtype (auto: float32 on CPU)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow this model's own Python code (only for authors you trust)")


def app_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m llmviz", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_args(p)
    p.add_argument("--screenshot", metavar="FILE.png",
                   help="load, run, wait until the views have drawn, save the window as PNG and exit")
    p.add_argument("--dock", metavar="NAME", help="with --screenshot: save only this dock, on its own at the shot's size (see --list-docks)")
    p.add_argument("--size", type=_size, metavar="WxH", help="window (or, with --dock, dock) size for the shot, e.g. 1600x1000")
    p.add_argument("--list-docks", action="store_true", help="print the dock names and exit")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="with --screenshot: give up after S seconds (default 600)")
    p.add_argument("--quit-when-shown", action="store_true", help=argparse.SUPPRESS)
    return p


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m llmviz export",
        description="Run a text through a model without opening a window and write model.json, tokens.csv "
                    "and attention.npz (float32 [layers, heads, T, T]) into --out.")
    _model_args(p)
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created)")
    p.add_argument("--layers", metavar="LIST", help="only these layers in attention.npz, e.g. 0,3,10-12")
    return p


def read_text_arg(args: argparse.Namespace) -> str | None:
    """The text from --text or --text-file (InputError for unreadable or non-UTF-8 files)."""
    if getattr(args, "text_file", None):
        from .core.textio import read_text_file

        return read_text_file(args.text_file)
    return args.text


def run_export(argv: list[str]) -> int:
    args = export_parser().parse_args(argv)
    from .core.errors import LlmvizError

    try:
        text = read_text_arg(args)
        if text is None:
            print("export: give --text or --text-file", file=sys.stderr)
            return 2
        return _export(args, text)
    except LlmvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _export(args: argparse.Namespace, text: str) -> int:
    from .core.export import parse_layers, write_export
    from .core.session import Session
    from .core.specs import ModelSpec
    from .core.tasks import Progress, TaskContext

    def report(p: Progress) -> None:
        pct = f" {p.fraction * 100:3.0f}%" if p.fraction is not None else ""
        print(f"\r{p.stage}{pct}".ljust(70), end="", file=sys.stderr, flush=True)

    ctx = TaskContext(report=report, min_interval_s=0.2)
    session = Session()
    info = session.load(ModelSpec(args.model, args.device, args.dtype, args.trust_remote_code), ctx)
    trace = session.run(text, ctx)
    print(file=sys.stderr)
    if trace.truncated_from:
        print(f"note: the text has {trace.truncated_from} tokens; {info.title} accepts {trace.num_tokens}, "
              f"so the first {trace.num_tokens} were used.", file=sys.stderr)
    if trace.is_empty:
        print("error: the text has no tokens for this model.", file=sys.stderr)
        return 1
    layers = parse_layers(args.layers, info.num_layers)
    for path in write_export(info, trace, args.out, layers):
        print(path)
    return 0
