"""Torch's intra-op thread count for small, latency-bound work on the worker.

One head's map (a few MFLOP to a few hundred) is latency-bound: each of its operations waits
for the slowest of torch's pool threads, and on a busy machine for a core.  On this 2-core CI
machine, `python bench/attention.py` (switches 250 ms apart, median of 20), two threads against
one: idle, 9.4-9.6 vs 11.4-11.5 ms at T = 1024 and 30-33 vs 38-42 ms at T = 4096 (two runs each,
interleaved); with another process spinning on one core, 75 vs 11.5 ms and 64 vs 48 ms.  One
thread is a little slower on an idle machine and meets the targets on a busy one.
Forward passes keep the whole pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with `count` intra-op threads, then restore the previous count."""
    before = torch.get_num_threads()
    if before == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
