"""Giving freed memory back to the operating system."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache

import psutil
import torch


@lru_cache(maxsize=1)
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_freed_memory() -> None:
    """Ask glibc to return freed heap pages (`malloc_trim(0)`).

    A trace of a long text frees hundreds of megabytes of activations; without a trim
    glibc keeps them mapped, so the process's resident memory ratchets up from one text
    to the next.  A no-op where glibc is not the allocator.
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def free_bytes(device: torch.device) -> int:
    """Memory free now where a model runs: the GPU's own for CUDA, the system's otherwise."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return int(psutil.virtual_memory().available)
