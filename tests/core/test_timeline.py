"""The timeline data: the shipped CSV, damaged hand-edited files, and the loaded model's place."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from llmviz.core.paths import resource
from llmviz.core.specs import ModelSpec
from llmviz.core.timeline import (
    COLUMNS,
    export_csv,
    load_timeline,
    match_model,
    parse_count,
    parse_date,
    parse_timeline,
    place_loaded_model,
)

HEADER = ",".join(COLUMNS)


@pytest.fixture(scope="module")
def shipped():
    return load_timeline()


@pytest.fixture(scope="module")
def tiny_llama_info(tiny_models):
    from llmviz.core.models import load_model

    return load_model(ModelSpec(str(tiny_models["llama"]), device="cpu")).info


# ---------------------------------------------------------------- the shipped data


def test_shipped_file_loads_without_problems(shipped):
    assert shipped.problems == ()
    assert len(shipped) >= 30


def test_no_two_rows_collapse(shipped):
    """The notebook's dict keyed by year lost LLaMA 2 behind GPT-4; here every data line is one model."""
    lines = [ln for ln in resource("timeline.csv").read_text(encoding="utf-8").splitlines()[1:] if ln.strip()]
    assert len(shipped) == len(lines)
    assert shipped.frame["name"].is_unique
    assert len(shipped.frame["line"].unique()) == len(shipped)


def test_llama2_and_gpt4_are_both_in_2023(shipped):
    in_2023 = shipped.frame[shipped.frame["year"] == 2023]["name"].tolist()
    assert "GPT-4" in in_2023
    assert any(name.startswith("Llama 2") for name in in_2023)
    assert len(in_2023) >= 5


def test_every_row_has_a_source_and_a_date(shipped):
    frame = shipped.frame
    assert frame["source"].str.len().gt(0).all()
    assert frame["source"].str.startswith("https://").all()
    assert frame["date"].notna().all()
    assert frame["date"].max() <= pd.Timestamp("2025-12-31")
    assert frame["date_precision"].isin(["day", "month"]).all()


def test_undisclosed_sizes_are_not_invented(shipped):
    """GPT-4's '~1.7T' was never published: its size is unknown, not an estimate with a number."""
    gpt4 = shipped.frame.set_index("name").loc["GPT-4"]
    assert gpt4["size_status"] == "unknown"
    assert math.isnan(gpt4["parameters"])
    unknown = shipped.frame[shipped.frame["size_status"] == "unknown"]
    assert unknown["parameters"].isna().all()
    known = shipped.frame[shipped.frame["size_status"] != "unknown"]
    assert known["parameters"].notna().all()
    assert set(shipped.frame["size_status"]) == {"official", "estimate", "unknown"}


def test_moe_rows_have_total_and_active_parameters(shipped):
    frame = shipped.frame.set_index("name")
    assert frame.loc["Mixtral 8x7B", "parameters"] == pytest.approx(46.7e9)
    assert frame.loc["Mixtral 8x7B", "active_parameters"] == pytest.approx(12.9e9)
    moe = shipped.frame[shipped.frame["active_parameters"].notna()]
    assert (moe["active_parameters"] < moe["parameters"]).all()
    assert frame.loc["GPT-3", "parameters"] == 175e9 and frame.loc["Chinchilla", "training_tokens"] == 1.4e12
    assert {"SmolLM2-135M", "SmolLM2-360M", "SmolLM2-1.7B", "Mistral 7B", "Llama 3 8B"} <= set(shipped.frame["name"])


# ---------------------------------------------------------------- single values


@pytest.mark.parametrize("text, value", [
    ("175e9", 175e9), ("175000000000", 175e9), ("175B", 175e9), ("1,542M", 1.542e9), ("1.2T", 1.2e12),
    ("65k", 65e3), (" 7.3e9 ", 7.3e9),
])
def test_parse_count(text, value):
    assert parse_count(text) == pytest.approx(value)


def test_parse_count_blank_and_bad():
    assert math.isnan(parse_count(""))
    with pytest.raises(ValueError, match="estimate"):
        parse_count("~1.7T")
    with pytest.raises(ValueError, match="not a number"):
        parse_count("lots")
    with pytest.raises(ValueError, match="greater than zero"):
        parse_count("0")


def test_parse_date():
    assert parse_date("2023-07-18") == (pd.Timestamp("2023-07-18"), "day")
    assert parse_date("2024-11") == (pd.Timestamp("2024-11-01"), "month")
    for bad in ("2023/07/18", "July 2023", "2023-02-30", ""):
        with pytest.raises(ValueError):
            parse_date(bad)


# ---------------------------------------------------------------- damaged, hand-edited files

DAMAGED = "\n".join([
    HEADER,                                                                            # line 1
    "Good A,Org,2020-05-28,175e9,,300e9,decoder-only,official,,https://a,",           # line 2
    "Bad date,Org,May 2020,1e9,,,decoder-only,official,,https://b,",                  # line 3
    "",                                                                                # line 4 (blank)
    "Too many,Org,2021-01-01,1e9,,,decoder-only,official,,https://c,a note, with a comma",  # line 5
    'Good B,Org,2022-03,70B,,1.4T,decoder-only,official,,https://d,"a note',           # line 6 (quoted value
    'over two lines"',                                                                 # line 7  spans 2 lines)
    "No source,Org,2022-04-01,1e9,,,decoder-only,official,,,",                         # line 8
    "Bad size,Org,2022-04-01,~1.7T,,,decoder-only,official,,https://e,",              # line 9
    "Good A,Org,2023-01-01,1e9,,,decoder-only,official,,https://f,",                  # line 10 duplicate
    "Bad tokens,Org,2023-02-01,7e9,,many,decoder-only,official,,https://g,",          # line 11 loads
    "Bad status,Org,2023-03-01,7e9,,,decoder-only,rumoured,,https://h,",              # line 12
    "Good C,Org,2024-01-01,,,,undisclosed,unknown,,https://i,",                        # line 13
])


def test_damaged_file_names_each_line_and_loads_the_rest(tmp_path: Path):
    path = tmp_path / "timeline.csv"
    path.write_text(DAMAGED, encoding="utf-8")
    timeline = load_timeline(path)
    assert sorted(timeline.frame["name"]) == ["Bad tokens", "Good A", "Good B", "Good C"]
    by_line = {p.line: p.message for p in timeline.problems}
    assert "May 2020" in by_line[3] and "skipped" in by_line[3]
    assert "more fields" in by_line[5]
    assert "no source" in by_line[8]
    assert "estimate" in by_line[9]
    assert "already appears on line 2" in by_line[10]
    assert "training_tokens" in by_line[11] and "left blank" in by_line[11]
    assert "rumoured" in by_line[12]
    assert set(by_line) == {3, 5, 8, 9, 10, 11, 12}
    good_b = timeline.frame.set_index("name").loc["Good B"]
    assert good_b["line"] == 6 and good_b["note"] == "a note\nover two lines"
    assert good_b["parameters"] == 70e9 and good_b["date_precision"] == "month"
    assert "line 3" in timeline.problem_summary() and "timeline.csv" in timeline.problem_summary()


def test_inconsistent_sizes_are_reported_and_fixed(tmp_path: Path):
    text = "\n".join([
        HEADER,
        "Unknown with size,Org,2020-01-01,5e9,,,decoder-only,unknown,,https://a,",
        "Official without size,Org,2020-01-01,,,,decoder-only,official,,https://b,",
        "Active too big,Org,2020-01-01,5e9,6e9,,mixture of experts,official,,https://c,",
        "No family,Org,2020-01-01,5e9,,,,official,,https://d,",
    ])
    timeline = parse_timeline(text, "x.csv")
    frame = timeline.frame.set_index("name")
    assert len(frame) == 4
    assert math.isnan(frame.loc["Unknown with size", "parameters"])
    assert frame.loc["Official without size", "size_status"] == "unknown"
    assert math.isnan(frame.loc["Active too big", "active_parameters"])
    assert frame.loc["No family", "family"] == "unspecified"
    assert [p.line for p in timeline.problems] == [2, 3, 4, 5]


def test_unreadable_missing_and_headerless_files(tmp_path: Path):
    missing = load_timeline(tmp_path / "nope.csv")
    assert len(missing) == 0 and "Could not read" in str(missing.problems[0])
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert "empty" in str(load_timeline(empty).problems[0])
    headerless = tmp_path / "headerless.csv"
    headerless.write_text("GPT-3,OpenAI,2020-05-28,175e9\n", encoding="utf-8")
    result = load_timeline(headerless)
    assert len(result) == 0 and result.problems[0].line == 1 and "no name or date column" in result.problems[0].message


def test_not_utf8_still_loads(tmp_path: Path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "\n" + "Good,Org,2020-01-01,1e9,,,decoder-only,official,,https://a,\n").encode()
                     + "Caf\xe9 model,Org,2021-01-01,2e9,,,decoder-only,official,,https://b,\n".encode("latin-1"))
    timeline = load_timeline(path)
    assert len(timeline) == 2
    assert timeline.problems[0].line == 3 and "UTF-8" in timeline.problems[0].message


def test_unknown_and_missing_columns(tmp_path: Path):
    text = "name,date,source,size_status,parameters,colour\nA,2020-01-01,https://a,official,1e9,red\n"
    timeline = parse_timeline(text)
    assert len(timeline) == 1
    messages = " ".join(p.message for p in timeline.problems)
    assert "colour" in messages and "organisation" in messages


def test_export_round_trip(shipped, tmp_path: Path):
    path = tmp_path / "out.csv"
    export_csv(shipped.frame, path)
    again = load_timeline(path)
    assert again.problems == ()
    pd.testing.assert_series_equal(again.frame["name"], shipped.frame["name"])
    pd.testing.assert_series_equal(again.frame["parameters"], shipped.frame["parameters"])
    assert (again.frame["date"] == shipped.frame["date"]).all()
    assert list(pd.read_csv(path).columns) == list(COLUMNS)


# ---------------------------------------------------------------- the loaded model


def test_hub_ids_and_titles_match_rows(shipped):
    frame = shipped.frame
    assert frame.loc[match_model(shipped, "meta-llama/Llama-2-7b-chat-hf"), "name"] == "Llama 2 7B"
    assert frame.loc[match_model(shipped, "SmolLM2-135M-Instruct (Q4_1-dequantized)"), "name"] == "SmolLM2-135M"
    assert frame.loc[match_model(shipped, "/cache/smollm2-135m-instruct-q4_1"), "name"] == "SmolLM2-135M"
    assert frame.loc[match_model(shipped, "mistralai/Mixtral-8x7B-Instruct-v0.1"), "name"] == "Mixtral 8x7B"
    assert frame.loc[match_model(shipped, "llama-2-7b.Q4_K_M.gguf"), "name"] == "Llama 2 7B"
    assert match_model(shipped, "gpt2") is None  # 124M GPT-2 is not the 1.5B row
    assert match_model(shipped, "") is None


def test_bundled_smollm2_is_placed_from_the_timeline(shipped, smollm2_session):
    point = place_loaded_model(shipped, smollm2_session.loaded.info)
    assert point.label == "SmolLM2-135M" and point.date_known
    assert point.parameters == 135e6 and point.parameters_from == "timeline"
    assert point.training_tokens == 2e12
    assert smollm2_session.loaded.info.num_parameters == pytest.approx(point.parameters, rel=0.01)


def test_unknown_size_is_counted_from_the_loaded_weights(tiny_llama_info, tmp_path: Path):
    """A row whose size is unknown takes the parameter count of the loaded weights."""
    path = tmp_path / "timeline.csv"
    path.write_text(HEADER + f"\n{tiny_llama_info.title},Test,2024-05-01,,,,decoder-only,unknown,,https://x,\n",
                    encoding="utf-8")
    point = place_loaded_model(load_timeline(path), tiny_llama_info)
    assert point.row == 0 and point.date == pd.Timestamp("2024-05-01")
    assert point.parameters == tiny_llama_info.num_parameters and point.parameters_from == "loaded weights"
    assert any("loaded weights" in note for note in point.notes)


def test_model_not_in_the_data_is_drawn_today(shipped, tiny_llama_info):
    point = place_loaded_model(shipped, tiny_llama_info, today=date(2026, 1, 2))
    assert point.row is None and not point.date_known
    assert point.date == pd.Timestamp("2026-01-02")
    assert point.parameters == tiny_llama_info.num_parameters
    assert math.isnan(point.training_tokens)
