"""Tokenizer jobs the engine runs for the tokens view: `fn(session, ctx, **kwargs)`."""

from __future__ import annotations

from .errors import InputError, LlmvizError
from .session import Session
from .tasks import TaskContext
from .tokenizers import load_tokenizer, split_differences, tokenize_with
from .tokenizers_results import BERT, GPT2, MODEL, TokenizerComparison


def warm(session: Session, ctx: TaskContext, source: str) -> str:
    """Job: load a bundled comparison tokenizer into the cache now, so the first comparison does not.

    Building GPT-2's BPE takes 60-150 ms; the Tokens dock asks for this right after a model
    loads, so that time falls inside the load the user is waiting for, not after the first
    results are on screen.  Other sources (hub ids, folders) are
    left to the comparison itself: they may need the network or be slow.
    """
    if source in (GPT2, BERT):
        return load_tokenizer(session, source, ctx)[1]
    return ""



def compare(session: Session, ctx: TaskContext, text: str, second: str, first: str = MODEL) -> TokenizerComparison:
    """Job: `text` through `first` (the loaded model's) and `second`; a failing second keeps the first."""
    if not isinstance(text, str):
        raise InputError("The input must be text.")
    tok, name = load_tokenizer(session, first, ctx)
    a = tokenize_with(tok, text, first, name)
    ctx.check()
    try:
        tok2, name2 = load_tokenizer(session, second, ctx)
        b = tokenize_with(tok2, text, second, name2)
    except LlmvizError as exc:
        return TokenizerComparison(text, a, None, str(exc))
    return TokenizerComparison(
        text, a, b, first_differs=split_differences(text, a.tokens, b.tokens),
        second_differs=split_differences(text, b.tokens, a.tokens),
    )
