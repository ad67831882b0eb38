"""`python -m llmviz explain`: attributions and faithfulness of one prediction, written as CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli import _model_args, _Progress, checked_text, run_command, run_text

METHOD_HELP = "gxi (gradient x input), ig (integrated gradients), occlusion, rollout, vnorm (value-weighted norm)"


def explain_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m llmviz explain",
        description="Explain one prediction without opening a window: attributions.csv (position, token, "
                    "token_id, one column per method) and faithfulness.csv (ERASER's comprehensiveness and "
                    "sufficiency curves per method and for a random ranking) in --out.")
    _model_args(p)
    p.add_argument("--target", default="-1", metavar="POS[:TOKEN]",
                   help="the 0-based position whose next-token prediction is explained (-1: the last), and "
                        "optionally the token (an id or a string that is one token; default the top-1 there)")
    p.add_argument("--compare", metavar="TEXT", default="",
                   help="encoders (bundled:minilm): explain the cosine similarity of the text's sentence "
                        "embedding to this second text")
    p.add_argument("--method", default="ig,gxi,occlusion", metavar="LIST", help=f"comma-separated: {METHOD_HELP}")
    p.add_argument("--steps", type=int, default=64, metavar="N",
                   help="integration steps for ig (default 64; the completeness gap printed says if more are needed)")
    p.add_argument("--refine-gap", type=float, default=0.0, metavar="FRACTION",
                   help="double ig's steps (up to 1024) while its completeness gap is above this fraction of "
                        "|f(x) - f(baseline)|, e.g. 0.01 (default 0: exactly --steps)")
    p.add_argument("--baseline", choices=("pad", "zero"), default="pad",
                   help="what a removed token becomes: the pad token's embedding, or zeros (default pad)")
    p.add_argument("--no-faithfulness", action="store_true", help="skip the faithfulness curves (faster)")
    p.add_argument("--by-word", choices=("auto", "yes", "no"), default="auto",
                   help="occlusion per word instead of per token (auto: from 256 tokens on)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output folder (created; checked before the model loads)")
    p.epilog = ("Exit status: 0 written; 1 refused or failed, with one message and nothing written; "
                "2 bad arguments; 3 a damaged installation; 70 an internal error; 130/143 ended by SIGINT/SIGTERM.")
    return p


def parse_target(value: str) -> tuple[int, str | None]:
    """POS[:TOKEN] -> (position, token or None); the token may itself contain ':'."""
    pos_text, sep, token = value.partition(":")
    try:
        position = int(pos_text)
    except ValueError:
        raise ValueError(f"--target: {pos_text!r} is not a position; give POS or POS:TOKEN, e.g. -1 or 5:Paris") from None
    if sep and token == "":
        raise ValueError("--target: nothing after ':'; give a token (an id or a string) or leave the ':' out")
    return position, (token if sep else None)


def parse_methods(value: str) -> list[str]:
    from .core.explain_results import METHODS

    methods = [m.strip().lower() for m in value.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"--method: unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(METHODS)}")
    return methods


def run_explain(argv: list[str]) -> int:
    """0 written, 1 refused or failed (one message), 2 bad usage, 70 a bug, 130/143 a signal."""
    return run_command(explain_parser(), argv, _checked_explain)


def _checked_explain(args: argparse.Namespace, progress: _Progress) -> int:
    try:  # every argument check before any model work
        position, token = parse_target(args.target)
        methods = parse_methods(args.method)
    except ValueError as exc:
        progress.say("error", str(exc))
        return 2
    if not 1 <= args.steps <= 1024:
        progress.say("error", "--steps: give between 1 and 1024 integration steps")
        return 2
    if not 0.0 <= args.refine_gap < 1.0:  # also refuses nan
        progress.say("error", "--refine-gap: give a fraction between 0 (no refining) and 1, e.g. 0.01")
        return 2
    text = checked_text(args, "explain", progress)
    if text is None:
        return 2
    return _explain(args, text, position, token, methods, progress)


def _explain(args: argparse.Namespace, text: str, position: int, token: str | None, methods: list[str],
             progress: _Progress) -> int:
    from .core.errors import LlmvizError
    from .core.explain_export import write_explanation
    from .core.explain_jobs import explain
    from .core.session import Session
    from .core.specs import ModelSpec
    from .core.tasks import TaskContext

    ctx = TaskContext(report=progress, min_interval_s=0.2)
    session = Session()
    info = session.load(ModelSpec(args.model, args.device, args.dtype, args.trust_remote_code), ctx)
    if not info.is_decoder and token is not None:
        raise LlmvizError(f"{info.title} is an encoder: it predicts no next token, so --target cannot name one. "
                          "Give --compare TEXT to explain its similarity to a second text.")
    if not info.is_decoder and not args.compare:
        raise LlmvizError(f"{info.title} is an encoder: it predicts no next token. Give --compare TEXT to explain "
                          "the similarity of the text's sentence embedding to a second text.")
    trace = run_text(session, info.title, text, ctx, progress)
    by_word = {"auto": None, "yes": True, "no": False}[args.by_word]
    result = explain(session, ctx, trace.id, position, token, methods, args.steps, args.baseline, args.compare,
                     not args.no_faithfulness, by_word, refine_gap=args.refine_gap)
    progress.end_line()
    for note in result.notes:
        progress.say("note", note)
    if "ig" in result.attributions:
        progress.say("note", f"integrated gradients, {result.ig_steps} steps: completeness gap "
                     f"{result.completeness_gap:.2%} of |f(x) - f(baseline)|")
    for path in write_explanation(result, args.out):
        print(path)
    return 0
