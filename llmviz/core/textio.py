"""Reading the user's text files, bounded: never more than a limit, never waiting forever.

A path can name anything: a 14 GB file, /dev/zero, a FIFO nobody writes to, a folder, a
terminal.  Regular files are measured before they are read; pipes, FIFOs and standard
input ('-') are read in chunks up to the limit, giving up when nothing arrives for a
while; devices and folders are refused by their type, without opening them.
"""

from __future__ import annotations

import os
import select
import stat
import sys
import time
from pathlib import Path

from .errors import InputError
from .formatting import bytes_text

LIMIT_ENV = "LLMVIZ_MAX_TEXT_BYTES"
DEFAULT_LIMIT = 4 * 2**20  # 4 MiB: about a million tokens, far beyond any model's window here
IDLE_TIMEOUT_S = 5.0  # a pipe that sends nothing for this long is given up on
WRITER_GRACE_S = 0.5  # how long a named pipe may wait for a program to open it for writing
STDIN = "-"
_CHUNK = 1 << 16


def text_limit(override: int | None = None) -> int:
    """The byte limit: `override`, else $LLMVIZ_MAX_TEXT_BYTES, else DEFAULT_LIMIT."""
    if override is not None:
        return int(override)
    raw = os.environ.get(LIMIT_ENV, "").strip()
    if not raw:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"{LIMIT_ENV}={raw!r} is not a whole number of bytes.") from None
    if value <= 0:
        raise InputError(f"{LIMIT_ENV} must be a positive number of bytes (got {value}).")
    return value


def _too_big(name: str, limit: int, size: str, raise_hint: str) -> InputError:
    return InputError(f"{name} is {size}, more than the {bytes_text(limit)} llmviz reads as text. "
                      f"Shorten it, or raise the limit: {raise_hint}.")


def read_text_file(path: str | Path, limit: int | None = None, idle_timeout_s: float = IDLE_TIMEOUT_S,
                   raise_hint: str | None = None) -> str:
    """Read a UTF-8 text file (or '-' for standard input) of at most `limit` bytes.

    Raises InputError saying what is wrong: missing, a folder, a device, a terminal, larger
    than the limit (with how to raise it: `raise_hint`, by default the environment
    variable), silent for `idle_timeout_s`, binary, or not UTF-8.
    """
    limit = text_limit(limit)
    hint = raise_hint or f"set {LIMIT_ENV} to a number of bytes"
    if str(path) == STDIN:
        name, fd = "standard input", os.dup(sys.stdin.fileno()) if sys.stdin is not None else -1
        if fd < 0:
            raise InputError("There is no standard input to read the text from; use --text or a file.")
        if os.isatty(fd):
            os.close(fd)
            raise InputError("Standard input is a terminal: pipe the text in (for example `cat essay.txt | ...`), "
                             "or give it with --text or a file.")
    else:
        p = Path(path)
        name = str(p)
        try:
            st = os.stat(p)
        except OSError as exc:
            raise InputError(f"Cannot read {p}: {exc.strerror or exc}") from None
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{p} is a folder; choose a text file inside it.")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            raise InputError(f"{p} is a device, not a text file.")
        if stat.S_ISSOCK(st.st_mode):
            raise InputError(f"{p} is a socket, not a text file.")
        if stat.S_ISREG(st.st_mode) and st.st_size > limit:
            raise _too_big(p.name, limit, bytes_text(st.st_size), hint)
        try:
            # O_NONBLOCK: opening a FIFO with no writer would otherwise wait forever
            fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise InputError(f"Cannot read {p}: {exc.strerror or exc}") from None
    try:
        data = _read_bounded(fd, limit + 1, idle_timeout_s, name)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise _too_big(name, limit, f"longer than {bytes_text(limit)}", hint)
    if b"\x00" in data[:8192]:
        raise InputError(f"{Path(name).name} looks like a binary file, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{Path(name).name} is not UTF-8 text (byte {exc.start} cannot be decoded). "
                         "Save it as UTF-8.") from None


def _read_bounded(fd: int, most: int, idle_timeout_s: float, name: str) -> bytes:
    """Up to `most` bytes from `fd`; on a pipe, give up after `idle_timeout_s` without data.

    A FIFO opened without blocking reads as end-of-file while no program has it open for
    writing (and select() would not wake for it), so end-of-file before any writer was seen
    is retried for WRITER_GRACE_S, then reported as such.
    """
    chunks: list[bytes] = []
    got = 0
    mode = os.fstat(fd).st_mode
    regular, fifo = stat.S_ISREG(mode), stat.S_ISFIFO(mode)
    writer_seen = not fifo
    blocking = os.get_blocking(fd)  # standard input: a read would wait for ever, so select() first
    started = time.monotonic()
    while got < most:
        if blocking and not regular and not select.select([fd], [], [], idle_timeout_s)[0]:
            raise InputError(f"Nothing arrived on {name} for {idle_timeout_s:g} seconds; "
                             "llmviz stopped waiting for the text.")
        try:
            chunk = os.read(fd, min(_CHUNK, most - got))
        except BlockingIOError:  # a writer is there but has sent nothing yet
            writer_seen = True
            ready, _, _ = select.select([fd], [], [], idle_timeout_s)
            if not ready:
                raise InputError(f"Nothing arrived on {name} for {idle_timeout_s:g} seconds; "
                                 "llmviz stopped waiting for the text.") from None
            continue
        except OSError as exc:
            raise InputError(f"Cannot read {name}: {exc.strerror or exc}") from None
        if chunk:
            writer_seen = True
            chunks.append(chunk)
            got += len(chunk)
        elif writer_seen or regular:
            break
        elif time.monotonic() - started > WRITER_GRACE_S:
            raise InputError(f"No program is writing to {name} (a named pipe), so there is no text to read.")
        else:
            time.sleep(0.05)
    return b"".join(chunks)
