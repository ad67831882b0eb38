"""Writing files so that nobody ever sees half of one.

Every file llmviz writes goes to a temporary name in the same folder (the same file
system, so the final rename is atomic) and is renamed into place only when complete; on
any failure, interruptions included, the temporary file is removed and a `WriteError`
says what failed and where.  Temporary names carry TEMP_MARK and keep the final suffix,
because some writers pick the format by extension (numpy appends `.npz`, Qt's image
exporter reads `.png`/`.svg`).

Also here: checking an output folder before any model work, and free space before a
write whose size is known.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import WriteError
from .formatting import bytes_text

TEMP_MARK = ".llmviz-part"
STALE_AFTER_S = 3600.0  # a temporary file untouched this long belongs to a run that was killed

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file would be larger than this system allows (a file-size limit)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such folder",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EISDIR: "a folder stands where the file should go",
    errno.ENAMETOOLONG: "the name is too long",
}


def os_reason(exc: BaseException) -> str:
    """A short, plain reason for an OSError (errno first: strerror is terse and sometimes absent)."""
    if isinstance(exc, OSError):
        return _REASONS.get(exc.errno or 0) or exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _new_temp(path: Path) -> Path:
    """Create an empty temporary file beside `path` (O_EXCL, mode 0666 less the umask, like a plain open)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}{TEMP_MARK}{path.suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise WriteError(f"Cannot write {path}: {os_reason(exc)} ({path.parent}).") from None
        os.close(fd)
        return tmp
    raise WriteError(f"Cannot write {path}: no free temporary name in {path.parent}.")


def _fsync(path: Path) -> None:
    """Flush the file's data to disk before the rename, so a crash cannot leave an empty 'complete' file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicGroup:
    """All or nothing for several files: each is written to a temporary name (`with
    group.path(final) as tmp:`), and all are renamed into place when the group's block ends
    without error.  Otherwise every temporary file is removed, and if a rename fails part-way
    the files already renamed go too, so a reader never finds an incomplete set."""

    def __init__(self) -> None:
        self._pairs: list[tuple[Path, Path]] = []

    @contextlib.contextmanager
    def path(self, final: str | Path) -> Iterator[Path]:
        """A temporary path for `final`; an OSError in the block becomes a WriteError naming `final`."""
        final = Path(final)
        if final.is_dir():
            raise WriteError(f"Cannot write {final}: a folder of that name is in the way.")
        tmp = _new_temp(final)
        self._pairs.append((tmp, final))
        try:
            yield tmp
        except WriteError:
            raise
        except OSError as exc:
            raise WriteError(f"Cannot write {final}: {os_reason(exc)}.") from exc

    def __enter__(self) -> AtomicGroup:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if kind is not None:
            self._discard([])
            return
        renamed: list[Path] = []
        try:
            for tmp, _final in self._pairs:
                _fsync(tmp)
            for tmp, final in self._pairs:
                os.replace(tmp, final)
                renamed.append(final)
        except BaseException as error:
            self._discard(renamed)
            if isinstance(error, OSError) and not isinstance(error, WriteError):
                where = self._pairs[len(renamed)][1] if len(renamed) < len(self._pairs) else self._pairs[-1][1]
                raise WriteError(f"Cannot write {where}: {os_reason(error)}.") from error
            raise

    def _discard(self, renamed: list[Path]) -> None:
        for path in (*(tmp for tmp, _ in self._pairs), *renamed):
            _unlink_quietly(path)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write `path` through; it is renamed into place when the block ends.

    If the block raises (anything, KeyboardInterrupt included) or the rename fails, the
    temporary file is removed; OSErrors come out as WriteError naming `path`.
    """
    with AtomicGroup() as group, group.path(path) as tmp:
        yield tmp


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """`open(path, mode)` through a temporary file: the file appears only when complete."""
    if not mode.startswith("w"):
        raise ValueError("atomic_open writes whole files: mode must start with 'w'")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_csv(frame: Any, path: str | Path, **kwargs: Any) -> None:
    """`frame.to_csv(path, **kwargs)` (a pandas DataFrame), atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)


# ---------------------------------------------------------------- checks before writing


def existing_ancestor(path: Path) -> Path:
    """`path` itself if it exists, else its nearest existing parent."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_folder(folder: str | Path) -> None:
    """Raise WriteError unless files can be created in `folder` (made later if missing).

    Tries it for real, with a temporary file created and removed again: permission bits
    say nothing for root, and a read-only mount, /proc or /sys only fail when written.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        kind = "a device" if folder.is_char_device() or folder.is_block_device() else "a file"
        raise WriteError(f"{folder} is {kind}, not a folder; give a folder to write into.")
    base = existing_ancestor(folder)
    if not base.is_dir():
        raise WriteError(f"{folder} cannot be created: {base} is a file, not a folder.")
    probe = base / f".llmviz-probe.{secrets.token_hex(4)}{TEMP_MARK}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        where = "" if base == folder else f" ({folder} would be created there)"
        reason = "it does not accept new files" if exc.errno == errno.ENOENT else os_reason(exc)
        raise WriteError(f"Cannot write in {base}{where}: {reason}.") from None
    os.close(fd)
    _unlink_quietly(probe)


def check_free_space(folder: str | Path, need: int, what: str, hint: str = "") -> None:
    """Raise WriteError if `folder`'s file system has less than `need` bytes (plus a margin) free."""
    base = existing_ancestor(Path(folder))
    try:
        free = shutil.disk_usage(base).free
    except OSError:
        return  # some file systems cannot say; the write itself will tell
    margin = max(1 << 20, need // 100)
    if need + margin > free:
        raise WriteError(f"{what} needs {bytes_text(need)} but {base} has only {bytes_text(free)} free. "
                         + (hint or "Free some space or choose another folder."))


@contextlib.contextmanager
def created_folder(folder: str | Path) -> Iterator[Path]:
    """Create `folder` (and missing parents) for the block; if the block fails, remove the
    folders it created again, as long as they are empty."""
    folder = Path(folder)
    missing: list[Path] = []
    p = Path(os.path.abspath(folder))
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"Cannot create the folder {folder}: {os_reason(exc)}.") from None
    try:
        yield folder
    except BaseException:
        for made in missing:  # innermost first
            with contextlib.suppress(OSError):
                made.rmdir()
        raise


def remove_stale_temporaries(folder: str | Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove temporary files of runs that were killed before they could (untouched for a while)."""
    removed = []
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in Path(folder).iterdir():
            if TEMP_MARK in entry.name and entry.is_file() and now - entry.stat().st_mtime > older_than_s:
                _unlink_quietly(entry)
                removed.append(entry)
    return removed
