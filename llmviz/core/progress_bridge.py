"""Route transformers' and huggingface_hub's tqdm progress bars into a TaskContext.

transformers offers `logging.set_tqdm_hook` for its own bars and a `tqdm_class` argument
for downloads; its GGUF converter uses `tqdm.auto` directly, so that one module attribute
is swapped for the duration.  Cancelling raises `Cancelled` from inside the loading loop,
which is what makes a load cancellable between tensors.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from .tasks import TaskContext


def make_bar_class(ctx: TaskContext, stage_prefix: str = "") -> type:
    """A minimal tqdm stand-in reporting to `ctx` (and raising `Cancelled`)."""

    class Bar:
        _lock = threading.RLock()

        def __init__(self, iterable: Any = None, desc: str | None = None, total: float | None = None, **_: Any):
            self.iterable = iterable
            if total is None and iterable is not None and hasattr(iterable, "__len__"):
                total = len(iterable)
            self.total = total
            self.n = 0
            self.desc = (desc or "").rstrip(". ")
            self._report()

        def _report(self) -> None:
            stage = f"{stage_prefix}{self.desc}" if self.desc else stage_prefix.rstrip(": ") or "Working"
            fraction = min(1.0, self.n / self.total) if self.total else None
            ctx.progress(stage, fraction)

        def __iter__(self) -> Iterator[Any]:
            for item in self.iterable:
                yield item
                self.update(1)

        def __len__(self) -> int:
            return int(self.total or 0)

        def update(self, n: float = 1) -> None:
            self.n += n or 0
            self._report()

        def reset(self, total: float | None = None) -> None:
            self.n = 0
            if total is not None:
                self.total = total

        def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
            self.desc = (desc or "").rstrip(". ")

        def close(self) -> None:
            pass

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.close()

        @classmethod
        def get_lock(cls) -> threading.RLock:
            return cls._lock

        @classmethod
        def set_lock(cls, lock: Any) -> None:
            cls._lock = lock

        def __getattr__(self, name: str) -> Any:
            # set_postfix, refresh, clear, unpause, display ... are cosmetic.
            return lambda *args, **kwargs: None

    return Bar


@contextlib.contextmanager
def transformers_progress(ctx: TaskContext, stage_prefix: str = "") -> Iterator[type]:
    """Within the block, transformers' progress bars report to `ctx`; yields the bar class
    (pass it as `tqdm_class=` to from_pretrained for download progress)."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    bar = make_bar_class(ctx, stage_prefix)
    previous_hook = hf_logging.set_tqdm_hook(lambda factory, args, kwargs: bar(*args, **kwargs))
    previous_gguf = getattr(gguf_utils, "tqdm", None)
    gguf_utils.tqdm = bar
    try:
        yield bar
    finally:
        hf_logging.set_tqdm_hook(previous_hook)
        if previous_gguf is not None:
            gguf_utils.tqdm = previous_gguf
