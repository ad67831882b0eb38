"""Session files: versioned JSON that round-trips, and says what it could not read."""

from __future__ import annotations

import json

import pytest

from llmviz.core.errors import InputError
from llmviz.core.session_file import SessionData, parse_session, read_session, write_session


def test_a_session_round_trips(tmp_path):
    data = SessionData("bundled:smollm2", "cpu", "float32", "The cat ✓", b"\x00\x01layout",
                       {"attention": {"layer": 3, "head": 1, "tabs": 0}}, "lesson.md", 4, True, "llmviz test")
    path = tmp_path / "s.json"
    write_session(path, data)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["llmviz_session"] == 1 and doc["model"]["source"] == "bundled:smollm2"
    back = read_session(path)
    assert back == data
    assert not list(tmp_path.glob("*.tmp*"))


def test_newer_or_damaged_parts_are_noted_not_fatal():
    doc = {"llmviz_session": 9, "model": {"source": "gpt2"}, "text": 5, "layout": "%%%", "views": {"tokens": {"second": "x"}}}
    data = parse_session(json.dumps(doc))
    assert data.model_source == "gpt2" and data.views == {"tokens": {"second": "x"}}
    notes = " ".join(data.notes)
    assert "newer llmviz" in notes and "'text'" in notes and "layout" in notes


@pytest.mark.parametrize("text", ["not json", "[]", '{"model": {}}'])
def test_non_sessions_are_refused(text):
    with pytest.raises(InputError):
        parse_session(text, "x.json")
