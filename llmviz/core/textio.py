"""Reading the user's text files."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError


def read_text_file(path: str | Path) -> str:
    """Read a UTF-8 text file, or raise InputError saying what is wrong with it."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read {p}: {exc.strerror or exc}") from None
    if b"\x00" in data[:8192]:
        raise InputError(f"{p.name} looks like a binary file, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{p.name} is not UTF-8 text (byte {exc.start} cannot be decoded). Save it as UTF-8.") from None
