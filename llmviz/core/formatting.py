"""How llmviz writes sizes, counts and durations, everywhere: one module, one convention.

Bytes in binary units written the IEC way (KiB, MiB, GiB: powers of 1024, as memory is
sold and as the OS reports it); counts with thousands separators; durations in ms below
a second, seconds below two minutes, then minutes.
"""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def bytes_text(n: float, digits: int = 1) -> str:
    """1536 -> '1.5 KiB'; 3 * 2**30 -> '3.0 GiB'; whole bytes below 1 KiB."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.{digits}f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def gib(n: float) -> float:
    """Bytes as GiB (for axes labelled 'GiB')."""
    return float(n) / 2**30


def mib(n: float) -> float:
    """Bytes as MiB (for axes and columns labelled 'MiB')."""
    return float(n) / 2**20


def count_text(n: int | float) -> str:
    """12345 -> '12,345'; 1.2e9 -> '1.2 billion' (parameter counts read better that way past a billion)."""
    if abs(n) >= 1e9:
        return f"{n / 1e9:,.1f} billion"
    return f"{int(round(n)):,}"


def duration_text(seconds: float) -> str:
    """0.0123 -> '12 ms'; 3.456 -> '3.5 s'; 200 -> '3 min 20 s'."""
    if seconds < 1:
        return f"{seconds * 1000:,.0f} ms"
    if seconds < 120:
        return f"{seconds:,.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s"
