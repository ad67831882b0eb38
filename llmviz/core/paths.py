"""Where llmviz finds its resources and keeps its cache, from source and when frozen."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import platformdirs

from .errors import CacheError

CACHE_ENV = "LLMVIZ_CACHE_DIR"
RESOURCES_ENV = "LLMVIZ_RESOURCES"


def is_frozen() -> bool:
    """True inside the PyInstaller app."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def app_root() -> Path:
    """The folder holding `resources/`: the repository checkout, or the frozen app's folder."""
    if is_frozen():
        return Path(sys._MEIPASS)
    return Path(__file__).resolve().parents[2]


def resources_dir() -> Path:
    """The `resources/` folder (data, lesson text, icons); LLMVIZ_RESOURCES overrides it."""
    override = os.environ.get(RESOURCES_ENV)
    return Path(override) if override else app_root() / "resources"


def resource(*parts: str) -> Path:
    """Path of one file under `resources/`."""
    return resources_dir().joinpath(*parts)


def cache_dir() -> Path:
    """Per-user cache (converted bundled models); LLMVIZ_CACHE_DIR overrides the platform default.

    Raises CacheError, naming the folder and how to choose another, when it cannot be made."""
    override = os.environ.get(CACHE_ENV)
    path = Path(override) if override else Path(platformdirs.user_cache_dir("llmviz", appauthor=False))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cache_error(path, exc) from None
    if not path.is_dir():
        raise cache_error(path, NotADirectoryError(errno.ENOTDIR, "a file stands where the folder should be"))
    return path


def cache_error(path: Path, exc: OSError) -> CacheError:
    """The message for a cache folder that cannot be used: which folder, why, and what to do."""
    from .atomic import os_reason

    origin = f" (from {CACHE_ENV})" if os.environ.get(CACHE_ENV) else ""
    reason = "a file stands where the folder should be" if isinstance(exc, (FileExistsError, NotADirectoryError)) \
        else os_reason(exc)
    return CacheError(f"llmviz cannot use its cache folder {path}{origin}: {reason}. "
                      f"Set {CACHE_ENV} to a folder you can write to.")
