"""Jobs only tests run in the engine process: `fn(session, ctx, **kwargs)`, named by dotted path.

They do what a real model can do to the process that holds it — take long, ignore cancel
inside one native call, run out of memory, abort, segfault — without needing a model that
does it.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

_HERE = "tests.engine_jobs."
SLOW_STEPS = _HERE + "slow_steps"
WHERE = _HERE + "where"
ALLOCATE_TOO_MUCH = _HERE + "allocate_too_much"
ABORT = _HERE + "abort"
SEGFAULT = _HERE + "segfault"
NATIVE_SLEEP = _HERE + "native_sleep"
MODULES = _HERE + "modules"
PARTIALS = _HERE + "partials"
BIG_ARRAY = _HERE + "big_array"


def slow_steps(session, ctx, steps: int = 200):
    for i in range(steps):
        ctx.progress("stepping", i / steps)
        time.sleep(0.01)
    return steps


def where(session, ctx):
    """(pid, parent pid, on the main thread) of the process that runs jobs."""
    return os.getpid(), os.getppid(), threading.current_thread() is threading.main_thread()


def allocate_too_much(session, ctx, library: str = "torch"):
    """A real allocation failure: ask torch's CPU allocator (or numpy) for 128 TiB at once."""
    if library == "numpy":
        import numpy as np

        return np.empty(1 << 47, dtype=np.uint8)
    import torch

    return torch.empty(1 << 47, dtype=torch.uint8)


def abort(session, ctx):
    """What a fatal error in native code does: SIGABRT, no Python cleanup."""
    os.abort()


def segfault(session, ctx):
    """A read through a null pointer in native code."""
    ctypes.string_at(0)


def native_sleep(session, ctx, seconds: float = 60.0):
    """One long C call that never returns to Python, so it never reaches a cancel check
    (libc's sleep(), as a stuck kernel or a hung collective would)."""
    libc = ctypes.CDLL(None)
    libc.sleep(int(seconds))
    return "woke up"


def modules(session, ctx):
    import sys

    return sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "transformers"))[:5]


def partials(session, ctx, count: int = 3):
    for i in range(count):
        ctx.partial(i)
    return count


def big_array(session, ctx, mib: int = 64):
    import numpy as np

    return np.arange(mib * 2**20 // 4, dtype=np.float32)


SLABS_OF_ROWS = _HERE + "slabs_of_rows"
ATTENTION_CACHE = _HERE + "attention_cache"
LOADED_INFO = _HERE + "loaded_info"
_ORIGINAL_SLAB_ROWS: list = []


def slabs_of_rows(session, ctx, rows: int | None = 1, pause_s: float = 0.0):
    """Make the engine compute attention maps `rows` query rows at a time (a cancel check after
    each), each slab taking at least `pause_s`, so a test can cancel one midway whatever the
    machine's speed; None puts the real slab size and speed back."""
    from llmviz.core import attention

    if not _ORIGINAL_SLAB_ROWS:
        _ORIGINAL_SLAB_ROWS.append((attention.slab_rows, attention.block_reduce))
    original_rows, original_reduce = _ORIGINAL_SLAB_ROWS[0]
    if rows is None:
        attention.slab_rows, attention.block_reduce = original_rows, original_reduce
        return

    def slow_reduce(*args, **kwargs):
        time.sleep(pause_s)
        return original_reduce(*args, **kwargs)

    attention.slab_rows = lambda *a: rows
    attention.block_reduce = slow_reduce if pause_s > 0 else original_reduce


def attention_cache(session, ctx):
    """{(layer, head): compute_s} of the head maps the engine has cached for the current trace."""
    cache = session.extras.get("attention")
    return {} if cache is None else {(m.layer, m.head): m.compute_s for m in cache.maps.values() if m.source == "head"}


def loaded_info(session, ctx):
    return session.info
