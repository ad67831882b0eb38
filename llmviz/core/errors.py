"""Exceptions whose text is shown to the user as-is."""

from __future__ import annotations

import re


class LlmvizError(Exception):
    """An error with a message written for the user (no traceback needed)."""


class ModelLoadError(LlmvizError):
    """A model could not be loaded; the previously loaded model is untouched."""


class BundledDataError(ModelLoadError):
    """A bundled offline model is missing or damaged; the message names the package."""


class InputError(LlmvizError):
    """The text or file given by the user cannot be used."""


class QuantizationMemoryError(LlmvizError):
    """A quantized variant would not fit in memory; nothing was loaded and the reference is untouched."""


class Cancelled(Exception):
    """Raised inside a task when its cancel token is set."""


_CPU_OOM = re.compile(r"can't allocate memory: you tried to allocate (\d+) bytes")


def out_of_memory_message(exc: BaseException, what: str) -> str | None:
    """A user-facing message when `exc` means the machine ran out of memory, else None.

    torch reports a failed CPU allocation as a plain RuntimeError ("[enforce fail at
    alloc_cpu.cpp] ... DefaultCPUAllocator: can't allocate memory"), CUDA as
    torch.OutOfMemoryError and numpy/Python as MemoryError; all three mean the same to a user.
    """
    if type(exc).__name__ == "OutOfMemoryError":
        first = str(exc).splitlines()[0] if str(exc) else ""
        return (f"{what}: out of GPU memory. Try a shorter text, device 'cpu' or a smaller model. {first}").strip()
    match = _CPU_OOM.search(str(exc)) if isinstance(exc, RuntimeError) else None
    enomem = isinstance(exc, (RuntimeError, OSError)) and "Cannot allocate memory" in str(exc)  # a failed mmap
    if match or enomem or isinstance(exc, MemoryError):
        need = f" (it asked for {int(match.group(1)) / 2**30:,.1f} GiB at once)" if match else ""
        return f"{what}: out of memory{need}. Try a shorter text or a smaller model; what is loaded stays loaded."
    return None


class WriteError(LlmvizError, OSError):
    """A file or folder could not be written; the message names it and why, and nothing partial is left.

    Also an OSError, so code that already handles a failed write (`except OSError`) handles this one.
    """


class CacheError(LlmvizError):
    """llmviz's cache folder cannot be used (missing rights, a file in its place, a read-only disk)."""


class RemoteCodeRefused(ModelLoadError):
    """The model ships Python code and consent to run it was not given.

    `str()` speaks to the window (its checkbox); `for_command_line()` names the option.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(
            f"{source} ships its own Python code (trust_remote_code). llmviz does not run it unless you "
            "tick 'Allow this model's own code' for this model, and only if you trust its authors."
        )

    def for_command_line(self) -> str:
        return (f"{self.source} ships its own Python code (trust_remote_code). llmviz does not run it unless you "
                "pass --trust-remote-code, and only if you trust its authors.")
