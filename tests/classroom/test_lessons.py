"""The lesson format: the built-in lesson parses, files round-trip, problems name their line."""

from __future__ import annotations

from dataclasses import replace

from llmviz.core.lessons import (
    BUILTIN,
    Lesson,
    LessonStep,
    check_views,
    dump_lesson,
    parse_lesson,
    read_lesson,
)

VIEWS = {"attention": ("layer", "head", "tabs"), "tokens": ("second",), "quiz": ("tabs",)}

GOOD = '''# Two steps

```toml
format = 1
model = "bundled:smollm2"
text = "The cat sat on the mat"
```

## A head

```toml
view = "attention"
pick = "previous-token"
[state]
layer = 2
head = 1
```

Some *Markdown*.

## Tokens

```toml
view = "tokens"
text = "Hello \\"world\\""
[state]
second = "bert-bundled"
```

More text.
'''


def _same_steps(a: Lesson, b: Lesson) -> bool:
    strip = lambda s: replace(s, line=0, problem=None)  # noqa: E731
    return [strip(s) for s in a.steps] == [strip(s) for s in b.steps]


def test_builtin_lesson_walks_the_notebook():
    lesson = read_lesson(BUILTIN)
    assert lesson.title == "LLM Fundamentals" and not lesson.problems
    views = [s.view for s in lesson.steps]
    assert views[0] == "environment" and views[-1] == "quiz"
    for expected in ("timeline", "model-tree", "scratch", "attention", "architecture", "scaling", "quantization",
                     "tokens", "similarity"):
        assert expected in views
    assert {s.pick for s in lesson.steps} >= {"previous-token", "attention-sink"}
    assert all(s.explanation for s in lesson.steps)


def test_a_lesson_round_trips():
    lesson = parse_lesson(GOOD, "good.md")
    assert not lesson.problems
    assert lesson.model == "bundled:smollm2" and lesson.text == "The cat sat on the mat"
    head, tokens = lesson.steps
    assert head.state == {"layer": 2, "head": 1} and head.pick == "previous-token" and head.line == 9
    assert tokens.text == 'Hello "world"' and tokens.explanation == "More text."
    again = parse_lesson(dump_lesson(lesson), "again.md")
    assert _same_steps(lesson, again) and again.title == lesson.title and again.text == lesson.text
    builtin = read_lesson(BUILTIN)
    assert _same_steps(builtin, parse_lesson(dump_lesson(builtin)))


def test_added_step_round_trips():
    lesson = parse_lesson(GOOD).with_step(LessonStep("Mine", "quiz", "Ask them.", {"tabs": 1}, text="x\ny"))
    assert _same_steps(lesson, parse_lesson(dump_lesson(lesson)))


def test_a_toml_error_names_its_line_and_spares_the_other_steps():
    broken = GOOD.replace("head = 1", "head = = 1")
    lesson = parse_lesson(broken, "/somewhere/broken.md")
    assert len(lesson.problems) == 1
    problem = lesson.problems[0]
    assert problem.line == broken.splitlines().index("head = = 1") + 1
    assert "broken.md, line" in str(problem)
    assert lesson.steps[0].problem is problem and lesson.steps[0].title == "A head"
    assert lesson.steps[1].problem is None and lesson.steps[1].view == "tokens"


def test_unknown_views_settings_and_keys_are_reported_with_lines():
    text = GOOD.replace('view = "tokens"', 'view = "tokenz"').replace("layer = 2", "layr = 2")
    lesson = check_views(parse_lesson(text, "x.md"), VIEWS)
    messages = [str(p) for p in lesson.problems]
    assert any("unknown view 'tokenz'" in m and "line 24" in m for m in messages), messages
    assert any("no setting 'layr'" in m and "line 15" in m for m in messages), messages
    odd = parse_lesson(GOOD.replace('pick = "previous-token"', 'colour = "red"'), "x.md")
    assert odd.steps[0].problem and "unknown setting 'colour'" in odd.steps[0].problem.message
    assert odd.steps[0].problem.line == 13


def test_missing_view_unclosed_block_newer_format_and_no_steps():
    assert "names no view" in parse_lesson("# T\n## S\n```toml\n[state]\nx = 1\n```\n").steps[0].problem.message
    assert "never closed" in parse_lesson("# T\n## S\n```toml\nview = 'quiz'\n").steps[0].problem.message
    newer = parse_lesson(GOOD.replace("format = 1", "format = 7"))
    assert any("newer llmviz" in p.message for p in newer.problems) and len(newer.steps) == 2
    assert any("no steps" in p.message for p in parse_lesson("# Empty\n\nJust words.\n").problems)
    assert parse_lesson(GOOD.replace('pick = "previous-token"', 'pick = "best"')).steps[0].problem is not None


def test_the_documented_example_is_a_valid_lesson():
    from pathlib import Path

    from llmviz.views import VIEWS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "lessons.md").read_text(encoding="utf-8")
    example = doc.split("````markdown\n", 1)[1].split("\n````", 1)[0]
    lesson = check_views(parse_lesson(example, "attention.md"), {v.NAME: v.STATE for v in VIEWS})
    assert not lesson.problems and len(lesson.steps) == 4 and lesson.title == "Attention in ten minutes"
    assert check_views(read_lesson(BUILTIN), {v.NAME: v.STATE for v in VIEWS}).problems == ()
