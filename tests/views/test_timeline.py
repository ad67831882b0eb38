"""The timeline dock: what is drawn, filters, the table, the loaded model, damaged data, export."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPointF, Qt

from llmviz.core.specs import ModelSpec
from llmviz.core.timeline import COLUMNS, load_timeline
from llmviz.views.timeline import TimelineView

HEADER = ",".join(COLUMNS)


@pytest.fixture(scope="module")
def tiny_info(tiny_models):
    from llmviz.core.models import load_model

    return load_model(ModelSpec(str(tiny_models["llama"]), device="cpu")).info


@pytest.fixture
def view(qtbot, host):
    v = TimelineView(host)
    qtbot.addWidget(v)
    v.resize(1200, 700)
    v.show()
    qtbot.waitUntil(lambda: v.timeline is not None)
    return v


def test_draws_every_model_at_its_date_and_size(view):
    frame = load_timeline().frame
    assert len(view.shown_rows) == len(frame) >= 30
    assert view.banner.isHidden()
    gpt3 = int(np.flatnonzero(frame["name"].to_numpy() == "GPT-3")[0])
    i = int(np.flatnonzero(view.shown_rows == gpt3)[0])
    assert view.ys[i] == pytest.approx(math.log10(175e9))
    assert pd.Timestamp(view.xs[i], unit="s") == pd.Timestamp("2020-05-28")
    unknown = (frame["size_status"] == "unknown").to_numpy()[view.shown_rows]
    assert np.all(view.ys[unknown] == view.strip_y) and view.strip_y > view.ys[~unknown].max()
    labels = view.visible_labels()
    assert "GPT-3" in labels and len(labels) >= 20


def test_llama2_and_gpt4_both_in_2023(view):
    names = view.timeline.frame.loc[view.shown_rows]
    in_2023 = set(names[names["year"] == 2023]["name"])
    assert "GPT-4" in in_2023 and {"Llama 2 7B", "Llama 2 70B"} <= in_2023


def test_family_filter_and_table(view, qtbot):
    moe = set(view.timeline.frame.index[view.timeline.frame["family"] == "mixture of experts"])
    assert moe <= set(view.shown_rows)
    view.family_boxes["mixture of experts"].setChecked(False)
    assert not moe & set(view.shown_rows)
    assert view.table.frame_model.rowCount() == len(view.shown_rows)
    view.show_unknown.setChecked(False)
    shown = view.timeline.frame.loc[view.shown_rows]
    assert (shown["size_status"] != "unknown").all()
    model = view.table.frame_model
    texts = [model.text(r, "parameters") for r in range(model.rowCount())]
    assert "175B" in texts and "—" not in texts
    smol = int(model.frame.index[model.frame["name"] == "SmolLM2-135M"][0])
    assert model.text(smol, "date_text") == "2024-11"  # month precision, as published
    assert view.table.proxy.index(0, 0).data() == "Word2Vec (Google News vectors)"  # sorted by date
    view.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)  # parameters, numerically
    assert view.table.proxy.index(0, 0).data() == "PaLM"  # 540B; Switch-C is filtered out with the MoE family


def test_hover_describes_a_point_with_its_source(view, qtbot):
    frame = view.timeline.frame
    row = int(frame.index[frame["name"] == "Chinchilla"][0])
    i = int(np.flatnonzero(view.shown_rows == row)[0])
    scene = view.item.getViewBox().mapViewToScene(QPointF(view.xs[i], view.ys[i]))
    assert view.point_at(scene) == row
    text = view.describe(row)
    assert "Chinchilla" in text and "DeepMind" in text and "70B" in text and "1.4T training tokens" in text
    assert "https://arxiv.org/abs/2203.15556" in text
    view.select_row(row)
    selected = view.table.selectionModel().selectedRows()
    assert len(selected) == 1
    assert view.table.frame_model.frame.at[view.table.source_row(selected[0].row()), "name"] == "Chinchilla"
    assert "estimate" in view.describe(int(frame.index[frame["size_status"] == "estimate"][0]))
    assert "not disclosed" in view.describe(int(frame.index[frame["name"] == "GPT-4"][0]))


def test_loaded_model_is_a_highlighted_point(view, smollm2_session):
    view.on_model_loaded(smollm2_session.loaded.info)
    assert view.is_ready()
    assert view.loaded.label == "SmolLM2-135M"
    (x,), (y,) = view.star.getData()
    assert y == pytest.approx(math.log10(135e6))
    assert pd.Timestamp(x, unit="s") == pd.Timestamp("2024-11-01")
    assert view.visible_labels()[0] == "loaded: SmolLM2-135M"
    assert "from the timeline" in view.describe("loaded")


def test_model_with_unknown_size_takes_its_weights(view, tiny_info, tmp_path):
    path = tmp_path / "timeline.csv"
    rows = [HEADER, "GPT-3,OpenAI,2020-05-28,175e9,,300e9,decoder-only,official,,https://a,",
            f"{tiny_info.title},Test,2024-05-01,,,,decoder-only,unknown,,https://b,"]
    path.write_text("\n".join(rows), encoding="utf-8")
    view.info = tiny_info
    view.load_data(str(path))
    view.model_changed(tiny_info)
    (_x,), (y,) = view.star.getData()
    assert y == pytest.approx(math.log10(tiny_info.num_parameters))
    assert view.loaded.parameters_from == "loaded weights"
    assert "size from its weights" in view.visible_labels()[0]


def test_model_not_in_the_data_is_still_shown(view, tiny_info):
    view.on_model_loaded(tiny_info)
    assert view.loaded.row is None
    (_x,), (y,) = view.star.getData()
    assert y == pytest.approx(math.log10(tiny_info.num_parameters))
    assert "today's date" in view.describe("loaded")


def test_damaged_csv_names_the_line_and_loads_the_rest(view, tmp_path):
    path = tmp_path / "timeline.csv"
    path.write_text("\n".join([
        HEADER,
        "GPT-3,OpenAI,2020-05-28,175e9,,300e9,decoder-only,official,,https://a,",
        "Broken,OpenAI,sometime,1e9,,,decoder-only,official,,https://b,",
        "Chinchilla,DeepMind,2022-03-29,70e9,,1.4e12,decoder-only,official,,https://c,",
    ]), encoding="utf-8")
    view.load_data(str(path))
    assert view.banner.isVisible()
    assert "line 3" in view.banner.text() and "sometime" in view.banner.text()
    assert list(view.timeline.frame.loc[view.shown_rows, "name"]) == ["GPT-3", "Chinchilla"]
    assert view.message_text == ""


def test_unreadable_csv_shows_a_message(view, tmp_path):
    view.load_data(str(tmp_path / "missing.csv"))
    assert "Could not read" in view.message_text
    view.load_data(None)  # back to the shipped file
    assert view.message_text == "" and len(view.shown_rows) >= 30


def test_export_csv_png_svg(view, tmp_path):
    view.family_boxes["word embeddings"].setChecked(False)
    csv = tmp_path / "t.csv"
    view.export_csv(str(csv))
    exported = pd.read_csv(csv)
    assert len(exported) == len(view.shown_rows)
    assert "Word2Vec (Google News vectors)" not in set(exported["name"]) and "GPT-4" in set(exported["name"])
    assert list(exported.columns) == list(COLUMNS)
    png, svg = tmp_path / "t.png", tmp_path / "t.svg"
    view.export_image(str(png))
    view.export_image(str(svg))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "<svg" in svg.read_text(encoding="utf-8")[:2000] and "GPT-3" in svg.read_text(encoding="utf-8")
