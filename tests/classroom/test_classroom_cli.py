"""The classroom flags from the command line: presentation and lesson screenshots, a broken
lesson, the PDF handout with no display, a saved session."""

from __future__ import annotations

import json
import re

from ..test_cli import llmviz, png_stats
from .support import small_lesson


def test_help_lists_the_classroom_flags():
    out = llmviz("--help").stdout
    for flag in ("--presentation", "--lesson", "--step", "--session", "--export-pdf"):
        assert flag in out


def test_presentation_screenshot_of_a_builtin_lesson_step(tmp_path):
    out = tmp_path / "step.png"
    result = llmviz("--presentation", "--lesson", "builtin", "--step", "6", "--screenshot", str(out), "--size", "1280x720")
    assert result.returncode == 0, result.stderr
    width, height, spread = png_stats(out)
    assert (width, height) == (1280, 720) and spread > 20


def test_a_broken_lesson_still_shows_its_good_steps(tmp_path, tiny_models):
    lesson = tmp_path / "broken.md"
    lesson.write_text(small_lesson(tiny_models["llama"], broken=True), encoding="utf-8")
    out = tmp_path / "second.png"
    result = llmviz("--lesson", str(lesson), "--step", "2", "--screenshot", str(out), "--size", "1280x720")
    assert result.returncode == 0, result.stderr
    assert png_stats(out)[2] > 20
    missing = llmviz("--lesson", str(tmp_path / "nope.md"), "--screenshot", str(out))
    assert missing.returncode == 2 and "nope.md" in missing.stderr


def test_export_pdf_writes_one_page_per_step(tmp_path, tiny_models):
    lesson = tmp_path / "small.md"
    lesson.write_text(small_lesson(tiny_models["llama"]), encoding="utf-8")
    pdf = tmp_path / "handout.pdf"
    env_less = {k: v for k, v in __import__("os").environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    result = llmviz("--lesson", str(lesson), "--export-pdf", str(pdf), env={**env_less, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    data = pdf.read_bytes()
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", data)) == 3 and b"/Subtype /Image" in data.replace(b"\n", b" ")
    assert "3 pages" in result.stdout
    assert llmviz("--export-pdf", str(pdf)).returncode == 2  # needs a lesson


def test_a_session_file_opens_from_the_command_line(tmp_path, tiny_models):
    session = tmp_path / "class.json"
    session.write_text(json.dumps({"llmviz_session": 1, "model": {"source": str(tiny_models["llama"]), "device": "cpu"},
                                   "text": "Sessions are prepared at home", "views": {"attention": {"layer": 2}}}),
                       encoding="utf-8")
    out = tmp_path / "session.png"
    result = llmviz("--session", str(session), "--screenshot", str(out), "--dock", "attention", "--size", "900x600")
    assert result.returncode == 0, result.stderr
    assert png_stats(out)[2] > 20
