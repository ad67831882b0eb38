"""One entry of llmviz's cache (a folder such as the converted SmolLM2): made under a lock,
in a temporary folder, and swapped into place whole.

- A lock file beside the entry (`filelock`) makes a second process asking for the same
  entry wait for the first instead of converting again.
- The temporary folder is named `<entry>.<random>` and holds an owner file (pid and start
  time).  Under the lock, any such folder whose owner is gone is stale (a run killed
  before its cleanup could run) and is removed; one without an owner file (made by an
  older llmviz) only once it is an hour old.
- The finished folder replaces the entry by renames: the old entry is moved aside first,
  so no reader ever sees a half-replaced folder, then removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
from filelock import FileLock, Timeout

from .atomic import STALE_AFTER_S
from .paths import cache_error
from .tasks import TaskContext

OWNER_FILE = ".llmviz-owner"
OLD_MARK = "old-"


def lock_path(target: Path) -> Path:
    """`.<entry>.lock`: kept between runs (removing a lock file others may hold open is racy)."""
    return target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def entry_lock(target: Path, ctx: TaskContext, waiting: str) -> Iterator[None]:
    """Hold the entry's lock for the block; while another process holds it, report `waiting`
    and keep honouring cancel."""
    try:
        lock = FileLock(str(lock_path(target)))
        reported = False
        while True:
            try:
                lock.acquire(timeout=0.2)
                break
            except Timeout:
                if not reported:
                    ctx.progress(waiting, None)
                    reported = True
                ctx.check()
    except OSError as exc:
        raise cache_error(target.parent, exc) from None
    try:
        yield
    finally:
        lock.release()


def _owner_alive(folder: Path) -> bool | None:
    """True/False from the folder's owner file; None when it has none (or it cannot be read)."""
    try:
        owner = json.loads((folder / OWNER_FILE).read_text())
        pid, started = int(owner["pid"]), float(owner["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except psutil.Error:
        return False


def temporaries(target: Path) -> list[Path]:
    """Folders beside the entry that a conversion made: `<entry>.<random>` and `<entry>.old-<random>`."""
    try:
        return [p for p in target.parent.glob(target.name + ".*") if p.is_dir()]
    except OSError:
        return []


def remove_stale(target: Path) -> list[Path]:
    """Remove temporaries whose owner is gone (call with the entry's lock held)."""
    removed = []
    now = time.time()
    for folder in temporaries(target):
        alive = _owner_alive(folder)
        if alive:
            continue
        if alive is None and not folder.name[len(target.name) + 1:].startswith(OLD_MARK):
            try:
                if now - folder.stat().st_mtime < STALE_AFTER_S:
                    continue  # an older llmviz, which takes no lock, may still be writing it
            except OSError:
                continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def remove_stale_if_free(target: Path) -> list[Path]:
    """remove_stale when the lock is free right now (never waits); nothing otherwise."""
    if not temporaries(target):
        return []
    try:
        lock = FileLock(str(lock_path(target)))
        lock.acquire(timeout=0)
    except (Timeout, OSError):
        return []
    try:
        return remove_stale(target)
    finally:
        lock.release()


def new_temporary(target: Path) -> Path:
    """An empty temporary folder beside the entry, marked with this process as its owner."""
    try:
        folder = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        me = psutil.Process()
        (folder / OWNER_FILE).write_text(json.dumps({"pid": me.pid, "started": me.create_time()}))
    except OSError as exc:
        raise cache_error(target.parent, exc) from None
    return folder


def install(folder: Path, target: Path) -> None:
    """Put the finished temporary `folder` in place of `target` (old entry moved aside, then removed)."""
    (folder / OWNER_FILE).unlink(missing_ok=True)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{target.name}.{OLD_MARK}", dir=target.parent))
        os.replace(target, old / "entry")
    os.replace(folder, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
