"""Tokenizer dock: the text as token chips, beside a second tokenizer, with differing splits highlighted."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.results import visible
from ..core.specs import ModelInfo
from ..core.tokenizers_results import CHOICES, GPT2, MODEL, Tokenization, TokenizerComparison, char_name, token_rows
from ..widgets.plot_export import write_csv
from ..widgets.token_chips import TokenChips
from ..workers.jobs import JobOutcome
from .base import DockView

if TYPE_CHECKING:  # pandas is imported when a table or CSV is made, not at start-up
    import pandas as pd


class TokenizerPanel(QWidget):
    """One tokenizer's chips with its figures (name, counts, vocabulary, round trip)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold; font-size: 12pt;")
        self.figures = QLabel()
        self.figures.setWordWrap(True)
        self.figures.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chips, self.area = TokenChips.scrolling()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.title)
        layout.addWidget(self.figures)
        layout.addWidget(self.area, 1)
        self.shown: Tokenization | None = None
        self._text, self._flags, self._other = "", None, ""

    def show_tokenization(self, tok: Tokenization, text: str, flags, other_name: str) -> None:
        self.shown = tok
        self.title.setText(f"{tok.name}  ·  {tok.algorithm}  ({tok.class_name})")
        special_pieces = sorted({p for p, s in zip(tok.tokens.pieces, tok.tokens.special) if s})
        special = f" + {tok.num_special} special ({', '.join(special_pieces)})" if tok.num_special else ""
        trip = ("✓ decode(encode(text)) gives the text back exactly" if tok.round_trip else
                "✗ lossy: decode(encode(text)) differs from the text")
        vocab = f"{tok.vocab_size:,}" + (f" ({tok.total_vocab:,} with added tokens)" if tok.total_vocab != tok.vocab_size else "")
        spans = "" if tok.has_spans else "<br><i>This tokenizer gives no character spans, so splits cannot be compared.</i>"
        decoded = html.escape(tok.decoded if len(tok.decoded) < 300 else tok.decoded[:300] + "…")
        self.figures.setText(
            f"<b>{tok.num_tokens:,}</b> tokens{special} · vocabulary {vocab} · {trip}<br>"
            f"<span style='color:#555'>Decoded: {decoded}</span>{spans}")
        self._text, self._flags, self._other = text, flags, other_name
        self.chips.set_tokens(list(tok.display), self.tooltip, flags, tok.tokens.special)

    def tooltip(self, i: int) -> str:
        """Token i's id, vocabulary piece and the characters it covers (asked on hover)."""
        tok, text = self.shown, self._text
        if tok is None or not 0 <= i < len(tok.tokens):
            return ""
        t = tok.tokens
        s, e = int(t.starts[i]), int(t.ends[i])
        if t.special[i] or s < 0 or e <= s:
            span = "no characters (special token)" if t.special[i] else "no character span"
        else:
            span = f"characters {s}–{e}: {visible(text[s:e])!r}"
        covered = text[s:e].strip() if 0 <= s < e else ""
        name = char_name(covered, 0, len(covered)) if len(covered) == 1 and ord(covered) > 127 else ""
        flagged = self._flags is not None and bool(self._flags[i])
        return (f"{tok.display[i]}\nid {int(t.ids[i])} · vocabulary piece {t.pieces[i]!r}\n{span}"
                + (f"\n{name}" if name else "")
                + (f"\nsplit differently by {self._other}" if flagged else ""))

    def show_error(self, name: str, message: str) -> None:
        self.shown = None
        self.title.setText(name)
        self.figures.setText(f"<span style='color:#b00020'>{html.escape(message)}</span>".replace("\n", "<br>"))
        self.chips.set_tokens([])


class TokensView(DockView):
    NAME = "tokens"
    TITLE = "Tokens"
    AREA = Qt.DockWidgetArea.BottomDockWidgetArea
    STATE = ("second",)

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self.second = QComboBox()
        self.second.setEditable(True)
        self.second.setMinimumContentsLength(28)
        self.second.setToolTip("Compare with: a bundled tokenizer, the loaded model's, "
                               "or type a Hugging Face id or folder and press Enter")
        for key, label in CHOICES:
            self.second.addItem(label, key)
        self.second.activated.connect(lambda _i: self.request())
        self.second.lineEdit().returnPressed.connect(self.request)
        compare = QPushButton("Compare")
        compare.clicked.connect(self.request)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._export_dialog)
        top = QHBoxLayout()
        top.addWidget(QLabel("Compare with:"))
        top.addWidget(self.second, 1)
        top.addWidget(compare)
        top.addWidget(self.export_button)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.first_panel, self.second_panel = TokenizerPanel(), TokenizerPanel()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.first_panel)
        split.addWidget(self.second_panel)
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)
        self.shown: TokenizerComparison | None = None

    def second_source(self) -> str:
        """The choice key for a listed entry, else the typed id."""
        text = self.second.currentText().strip()
        index = self.second.findText(text)
        return str(self.second.itemData(index)) if index >= 0 else text

    def model_changed(self, info: ModelInfo) -> None:
        self.shown = None

    def prepare(self, info: ModelInfo) -> None:
        # No callback: a failure shows in the comparison that follows.
        self.host.call(targets.TOKENIZERS_WARM, label="Loading the comparison tokenizer",
                       source=self.second_source() or GPT2)

    def trace_changed(self, trace) -> None:
        self.request()

    def compared_text(self) -> str:
        """The text the model saw: when it was truncated to the context, only that part is compared
        (a pasted book would otherwise be tokenized twice more and laid out as tens of thousands of chips)."""
        trace = self.trace
        if trace is None:
            return ""
        if trace.truncated_from and len(trace.tokens) and int(trace.tokens.ends.max()) > 0:
            return trace.text[: int(trace.tokens.ends.max())]
        return trace.text

    def request(self) -> None:
        if self.trace is None or self.trace.is_empty:
            return
        self.mark_busy()
        self.host.call(targets.TOKENIZERS_COMPARE, label="Comparing tokenizers", on_done=self._compared,
                       text=self.compared_text(), second=self.second_source() or GPT2, first=MODEL)

    def _compared(self, outcome: JobOutcome) -> None:
        if self.trace is None or outcome.kwargs.get("text") != self.compared_text():
            return
        if not outcome.ok:
            self.show_failure(outcome)
            return
        self.draw(outcome.value)

    def draw(self, result: TokenizerComparison) -> None:
        self.shown = result
        a, b = result.first, result.second
        self.first_panel.show_tokenization(a, result.text, result.first_differs, b.name if b else "")
        if b is None:
            self.second_panel.show_error(self.second.currentText(), result.second_error)
            self.summary.setText(f"{a.name}: <b>{a.num_tokens:,}</b> tokens. The second tokenizer could not be loaded.")
        else:
            self.second_panel.show_tokenization(b, result.text, result.second_differs, a.name)
            differ = int(result.first_differs.sum()) if result.first_differs is not None else 0
            diff = result.count_difference
            self.summary.setText(
                f"{a.name}: <b>{a.num_tokens:,}</b> tokens · {b.name}: <b>{b.num_tokens:,}</b> tokens · "
                f"difference: <b>{diff:+,}</b> token{'s' if abs(diff or 0) != 1 else ''} (special tokens not counted, as "
                f"<code>len(tokenizer.tokenize(text))</code>).<br>"
                f"<span style='background:#fbd0d2; border:1px solid #d0202a'>&nbsp;red&nbsp;</span> = split differently "
                f"by the other tokenizer ({differ:,} of {a.num_tokens:,} here). Hover a token for its id and characters.")
        self.show_content()
        self.mark_ready()

    # -- export ------------------------------------------------------------------------------
    def tokens_frame(self) -> pd.DataFrame:
        import pandas as pd
        result = self.shown
        if result is None:
            return pd.DataFrame()
        rows = token_rows(result.first, result.text)
        if result.second is not None:
            rows += token_rows(result.second, result.text)
        return pd.DataFrame(rows)

    def export_csv(self, path: str) -> None:
        write_csv(self.tokens_frame(), path, index=False)

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export tokens", "tokens.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)
