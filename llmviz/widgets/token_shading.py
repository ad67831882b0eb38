"""The text with each token shaded on a diverging scale: red raises the target, blue lowers it.

Rich text in a read-only QTextBrowser, so it wraps like prose, selects and copies like
text, and a hovered token's value shows in its tooltip.  The scale is symmetric around 0
(the largest |value| is full colour), so the same shade means the same share on both sides.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
from PySide6.QtWidgets import QTextBrowser, QWidget

POSITIVE = (200, 40, 40)
NEGATIVE = (40, 90, 200)
MAX_TOKENS_SHADED = 4096  # beyond this the page would take seconds to lay out; the rest is listed as plain text


def shade(value: float, scale: float) -> str:
    """A CSS colour from white (0) to full red (+scale) or blue (-scale)."""
    if not np.isfinite(value) or scale <= 0:
        return "#ffffff"
    t = min(1.0, abs(value) / scale)
    r, g, b = POSITIVE if value > 0 else NEGATIVE
    mix = lambda c: int(round(255 + (c - 255) * t))  # noqa: E731
    return f"#{mix(r):02x}{mix(g):02x}{mix(b):02x}"


class TokenShading(QTextBrowser):
    """Tokens as inline spans coloured by their values; the target position is bold and underlined."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setMinimumHeight(90)
        self.labels: list[str] = []
        self.values = np.zeros(0)

    def set_values(self, labels: Sequence[str], values: np.ndarray, marked: int | None = None,
                   caption: str = "") -> None:
        self.labels, self.values = list(labels), np.asarray(values, dtype=np.float64)
        finite = self.values[np.isfinite(self.values)]
        scale = float(np.abs(finite).max()) if finite.size else 0.0
        parts = []
        for i, (label, value) in enumerate(zip(self.labels[:MAX_TOKENS_SHADED], self.values)):
            text = html.escape(label).replace("␣", "&nbsp;") or "&nbsp;"
            # Qt's rich text draws no borders on inline spans: the marked token is bold and underlined
            border = "font-weight:bold;text-decoration:underline;" if i == marked else ""
            dark = np.isfinite(value) and scale > 0 and abs(value) / scale > 0.6
            colour = "color:#fff;" if dark else ""
            parts.append(f'<span title="{i}: {value:+.4g}" style="background:{shade(value, scale)};{border}{colour}">'
                         f"{text}</span>")
        rest = "".join(html.escape(x) for x in self.labels[MAX_TOKENS_SHADED:])
        # Sizes relative to the widget's font, so presentation mode's larger font reaches the text:
        # the caption at the widget's size, the tokens one step larger.
        head = f'<div style="color:#555;">{html.escape(caption)}</div>' if caption else ""
        self.setHtml(f'{head}<div style="font-size:large;line-height:160%;">{"".join(parts)}{rest}</div>')

    def clear_values(self) -> None:
        self.labels, self.values = [], np.zeros(0)
        self.clear()
