"""Naming the package behind a failed import, for a one-line message instead of a traceback.

A damaged app folder or virtual environment shows up as an exception raised while some
third-party module body runs (kernels' `FileNotFoundError` for its dependency data, a
`ModuleNotFoundError`, an `OSError` from a missing shared library). The user can act on
the package's name, not on the 30 frames above it. Standard library only: this module
must import when everything else is broken.
"""

from __future__ import annotations

import sys
import traceback

DAMAGED = "the package is incomplete or damaged"
_OURS = ("llmviz", "llmviz_entry", "__main__", "__mp_main__")


def _third_party(module: str | None) -> str | None:
    top = (module or "").split(".")[0]
    if not top or top in _OURS or top in sys.stdlib_module_names or top.startswith("_pytest"):
        return None
    return top


def _chain(exc: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def failing_package(exc: BaseException) -> str | None:
    """The top-level third-party package whose import raised `exc` (or an exception that led
    to it), or None when `exc` did not come from running a module body outside llmviz and
    the standard library."""
    for err in _chain(exc):
        if isinstance(err, ModuleNotFoundError) and _third_party(err.name):
            return _third_party(err.name)
        culprit = None
        for frame, _ in traceback.walk_tb(err.__traceback__):
            if frame.f_code.co_name == "<module>":
                culprit = _third_party(frame.f_globals.get("__name__")) or culprit  # the innermost wins
        if culprit:
            return culprit
    return None


def _distribution_of(package: str) -> str:
    """The pip name of an import name ('PyYAML' for 'yaml'); the import name when unknown."""
    try:
        from importlib.metadata import packages_distributions

        return (packages_distributions().get(package) or [package])[0]
    except Exception:  # noqa: BLE001 - damaged metadata must not hide the original failure
        return package


def import_failure_message(exc: BaseException) -> str | None:
    """One paragraph for the user when `exc` is a failed import of a third-party package, else None."""
    package = failing_package(exc)
    if package is None:
        return None
    lines = str(exc).strip().splitlines()
    what = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    if _out_of_memory(exc):  # a package that cannot be mapped into memory is not damaged
        return f"The package '{package}' could not be loaded into memory ({what}). {_memory_hint()}"
    if getattr(sys, "frozen", False):  # the PyInstaller app
        fix = "Rebuild the app (make package) or download it again."
    else:
        fix = f"Reinstall it: make install, or pip install --force-reinstall {_distribution_of(package)}."
    return f"The package '{package}' could not be imported ({what}): {DAMAGED}. {fix}"


_NO_MEMORY = ("failed to map segment", "cannot allocate memory")


def _out_of_memory(exc: BaseException) -> bool:
    return any(isinstance(err, MemoryError) or any(t in str(err).lower() for t in _NO_MEMORY) for err in _chain(exc))


def _memory_hint() -> str:
    """What limits this process's memory: an address-space limit (ulimit -v), else the machine."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        soft = -1
    if soft not in (-1, getattr(sys.modules.get("resource"), "RLIM_INFINITY", -1)):
        return (f"This process may use at most {soft / 2**20:,.0f} MiB of address space (ulimit -v); "
                "raise that limit to run llmviz.")
    return "The machine is out of memory; close other programs and try again."
