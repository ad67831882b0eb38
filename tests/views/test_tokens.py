"""The tokens dock: chips, figures, highlighted differences, tooltips, export, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPoint, Qt

from llmviz.core import tokenizers_results as tkr
from llmviz.views.tokens import TokensView
from llmviz.widgets.token_chips import TokenChips

from .host_steps import load, run

NOTEBOOK_TEXT = "Hello, I'm learning about Large Language Models! This is fascinating. 🤖"


@pytest.fixture
def view(qtbot, host):
    v = TokensView(host)
    qtbot.addWidget(v)
    v.resize(1000, 700)
    v.show()
    return v


def choose(view: TokensView, key: str) -> None:
    view.second.setCurrentIndex(view.second.findData(key))


def test_notebook_example_gpt2_model_against_bert(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["gpt2"]))  # its tokenizer is GPT-2's BPE
    choose(view, tkr.BERT)
    run(qtbot, host, view, NOTEBOOK_TEXT)
    first, second = view.first_panel, view.second_panel
    assert first.chips.labels[:5] == ["Hello", ",", "␣I", "'m", "␣learning"]
    assert second.chips.labels[:4] == ["[CLS]", "hello", ",", "i"]
    assert len(first.chips.labels) == 17 and len(second.chips.labels) == 18
    flagged = [first.chips.labels[i] for i in np.nonzero(first.chips.flags)[0]]
    assert flagged == ["'m", "␣⟨F0 9F⟩", "⟨A4⟩", "⟨96⟩"]
    assert second.chips.special[0] and second.chips.special[-1]
    summary = view.summary.text()
    assert "<b>17</b> tokens" in summary and "<b>16</b> tokens" in summary and "<b>+1</b> token" in summary
    assert "vocabulary 50,257" in first.figures.text() and "vocabulary 30,522" in second.figures.text()
    assert "✓" in first.figures.text() and "✗ lossy" in second.figures.text()
    tip = first.tooltip(2)
    assert "id 314" in tip and "characters 6–8" in tip and "'Ġ" not in tip.splitlines()[0]
    assert "ROBOT FACE" in first.tooltip(15) and "split differently" in first.tooltip(15)
    assert "special token" in second.tooltip(0)


def test_export_csv_has_both_tokenizers(qtbot, host, view, tiny_models, tmp_path):
    load(qtbot, host, [view], str(tiny_models["gpt2"]))
    choose(view, tkr.BERT)
    run(qtbot, host, view, NOTEBOOK_TEXT)
    path = tmp_path / "tokens.csv"
    view.export_csv(str(path))
    frame = pd.read_csv(path)
    assert len(frame) == 17 + 18
    assert list(frame["id"][:3]) == [15496, 11, 314]
    assert set(frame["tokenizer"]) == {view.shown.first.name, view.shown.second.name}


def test_unloadable_second_tokenizer_keeps_the_first(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["gpt2"]))
    run(qtbot, host, view, NOTEBOOK_TEXT)
    view.second.setEditText("someone/no-such-tokenizer")
    with qtbot.waitSignal(view.sig_ready, timeout=60_000):
        view.request()
    assert "no-such-tokenizer" in view.second_panel.figures.text()
    assert view.second_panel.chips.labels == []
    assert len(view.first_panel.chips.labels) == 17 and view.message_text == ""
    assert "could not be loaded" in view.summary.text()


def test_text_without_tokens_shows_a_message(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["gpt2"]))
    run(qtbot, host, view, "")
    assert "Type some text" in view.message_text


def test_real_smollm2_against_bundled_gpt2(qtbot, host, view):
    load(qtbot, host, [view], "bundled:smollm2")
    choose(view, tkr.GPT2)
    run(qtbot, host, view, NOTEBOOK_TEXT)
    result = view.shown
    assert result.first.algorithm == result.second.algorithm == "byte-level BPE"
    assert result.first.tokens.pieces == result.second.tokens.pieces  # same splits here, different ids
    assert list(result.first.tokens.ids[:2]) != list(result.second.tokens.ids[:2])
    assert not view.first_panel.chips.flags.any() and "+0" in view.summary.text()


def test_chips_wrap_and_find_tokens(qtbot):
    chips, area = TokenChips.scrolling()
    qtbot.addWidget(area)
    area.resize(300, 200)
    area.show()
    chips.set_tokens([f"token{i}" for i in range(40)], lambda i: f"tip {i}")
    qtbot.waitUntil(lambda: chips.width() > 100)
    rows = {r.top() for r in chips.rects}
    assert len(rows) > 3 and chips.minimumHeight() > 3 * chips.rects[0].height()
    assert all(r.right() <= chips.width() for r in chips.rects)
    centre = chips.rects[25].center()
    assert chips.index_at(centre.x(), centre.y()) == 25
    assert chips.index_at(-5, -5) == -1
    with qtbot.waitSignal(chips.sig_clicked) as blocker:
        qtbot.mouseClick(chips, Qt.MouseButton.LeftButton, pos=QPoint(int(centre.x()), int(centre.y())))
    assert blocker.args == [25] and chips.selected == 25


def test_chips_wrap_greedily_like_words(qtbot):
    """Each row takes chips while they fit (a too-wide chip gets a row of its own), as word wrap."""
    from llmviz.widgets import token_chips as tc

    chips, area = TokenChips.scrolling()
    qtbot.addWidget(area)
    area.resize(420, 300)
    area.show()
    rng = np.random.default_rng(0)
    labels = ["x" * int(n) for n in rng.integers(1, 12, 500)] + ["W" * 200] + ["ab"] * 30
    chips.set_tokens(labels)
    qtbot.waitUntil(lambda: chips.width() > 100)
    width, rects = chips.width(), chips.rects
    x, y, expected = tc.GAP, tc.GAP, []
    for w in chips._widths:  # the plain one-chip-at-a-time rule
        if x + w > width - tc.GAP and x > tc.GAP:
            x, y = tc.GAP, y + chips._chip_height() + tc.GAP
        expected.append((x, y))
        x += w + tc.GAP
    assert [(r.x(), r.y()) for r in rects] == expected
    wide = rects[500]
    assert wide.x() == tc.GAP and wide.right() <= width and rects[501].y() > wide.y()
    assert chips.minimumHeight() == int(rects[-1].bottom() + tc.GAP)
    assert chips._widths[0] == chips.fontMetrics().horizontalAdvance(labels[0]) + 2 * tc.PAD_X
    bigger = chips.font()
    bigger.setPointSize(bigger.pointSize() * 2)
    chips.setFont(bigger)  # widths measured again, in the new font
    assert chips._widths[0] == chips.fontMetrics().horizontalAdvance(labels[0]) + 2 * tc.PAD_X
    assert chips.minimumHeight() == int(chips.rects[-1].bottom() + tc.GAP) and chips.rects[-1].bottom() > rects[-1].bottom()


def test_a_truncated_text_compares_only_what_the_model_saw(qtbot, host, view, tiny_models):
    load(qtbot, host, [view], str(tiny_models["llama"]))  # 64 positions
    trace = run(qtbot, host, view, " ".join(f"word{i}" for i in range(400)))
    assert trace.truncated_from is not None and trace.num_tokens == 64
    assert len(view.first_panel.chips.labels) == 64  # not the whole pasted text
    assert view.shown.text == trace.text[: int(trace.tokens.ends.max())]
