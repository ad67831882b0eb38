"""Lessons: a Markdown file an instructor writes by hand, one `## ` heading per step.

The format (documented with a complete example in docs/lessons.md)::

    # Lesson title
    ```toml
    format = 1
    model = "bundled:smollm2"      # loaded when the lesson opens
    text = "The cat sat on the mat"
    ```
    ## Step title
    ```toml
    view = "attention"             # a dock name (python -m llmviz --list-docks)
    pick = "previous-token"        # optional: choose layer and head from the head statistics
    text = "..."                   # optional: this step's text (model = "..." likewise)
    [state]                        # the view's settings, as its saved state names them
    tabs = 0
    ```
    A few sentences of Markdown, shown large beside the view.

Parsing never raises for a bad step: the step keeps its line and an error, and every other
step works.  No Qt here; the window checks view names and settings with `check_views`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomllib

from .errors import InputError
from .paths import resource

FORMAT = 1
BUILTIN = "builtin"
BUILTIN_FILE = "llm_fundamentals.md"
PICKS = ("previous-token", "attention-sink")
STEP_KEYS = {"view", "text", "model", "pick", "state"}
HEADER_KEYS = {"format", "model", "text"}
_FENCE = re.compile(r"^```\s*toml\s*$")
_TOML_LINE = re.compile(r"\(at line (\d+)")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class LessonProblem:
    """One thing wrong in a lesson file, where it is."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{Path(self.path).name}, line {self.line}: {self.message}"


@dataclass(frozen=True)
class LessonStep:
    """One slide: a view in a state, and what to say about it."""

    title: str
    view: str
    explanation: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    model: str | None = None
    pick: str | None = None
    line: int = 0  # of its `## ` heading (1-based)
    problem: LessonProblem | None = None
    #: The file line of each setting (state names included), for messages about them.
    key_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Lesson:
    title: str
    steps: tuple[LessonStep, ...]
    model: str | None = None
    text: str | None = None
    path: str = "<lesson>"
    format: int = FORMAT
    problems: tuple[LessonProblem, ...] = ()  # of the header and of every step

    def with_step(self, step: LessonStep) -> Lesson:
        """This lesson with `step` added at the end ("Add this view as a step")."""
        return replace(self, steps=(*self.steps, step))


def builtin_path() -> Path:
    return resource("lessons", BUILTIN_FILE)


def read_lesson(path: str | Path) -> Lesson:
    """Parse a lesson file ('builtin' for LLM Fundamentals); InputError when it cannot be read."""
    p = builtin_path() if str(path) == BUILTIN else Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Could not read the lesson {p}: {exc}") from None
    return parse_lesson(text, str(p))


def _toml(block: list[str], first_line: int, path: str) -> tuple[dict[str, Any], LessonProblem | None]:
    """The TOML block's table, or a problem at the file line TOML reported."""
    try:
        return tomllib.loads("\n".join(block)), None
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_LINE.search(str(exc))
        line = first_line + (int(m.group(1)) - 1 if m else 0)
        return {}, LessonProblem(path, line, f"TOML: {str(exc).split(' (at line')[0]}")


def _split(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header's lines, and each step's (heading line number, lines)."""
    header: list[str] = []
    steps: list[tuple[int, list[str]]] = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            steps.append((number, [line]))
        elif steps:
            steps[-1][1].append(line)
        else:
            header.append(line)
    return header, steps


def _body(lines: list[str], first_line: int, path: str) -> tuple[dict[str, Any], str, int, LessonProblem | None]:
    """(toml table, markdown, line of the toml block, problem) of the lines after a heading."""
    table: dict[str, Any] = {}
    problem = None
    toml_line = first_line
    rest: list[str] = []
    i = 0
    while i < len(lines):
        if _FENCE.match(lines[i].strip()) and not table and problem is None:
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if j == len(lines):
                return {}, "", first_line + i, LessonProblem(path, first_line + i, "the ```toml block is never closed")
            toml_line = first_line + i + 1
            table, problem = _toml(lines[i + 1:j], toml_line, path)
            i = j + 1
            continue
        rest.append(lines[i])
        i += 1
    return table, "\n".join(rest).strip(), toml_line, problem


def _key_line(lines: list[str], first_line: int, key: str) -> int:
    for offset, line in enumerate(lines):
        if line.strip().startswith(key):
            return first_line + offset
    return first_line


def parse_lesson(text: str, path: str = "<lesson>") -> Lesson:
    """A Lesson from its text; problems are collected (with lines), never raised."""
    header, chunks = _split(text)
    problems: list[LessonProblem] = []
    title = next((line[2:].strip() for line in header if line.startswith("# ")), "") or Path(path).stem
    table, _, header_line, problem = _body(header, 1, path)
    if problem:
        problems.append(problem)
    for key in sorted(set(table) - HEADER_KEYS):
        problems.append(LessonProblem(path, _key_line(header, 1, key), f"unknown setting {key!r} in the lesson header "
                                      f"(known: {', '.join(sorted(HEADER_KEYS))})"))
    fmt = table.get("format", FORMAT)
    if not isinstance(fmt, int) or fmt > FORMAT:
        problems.append(LessonProblem(path, header_line, f"this lesson is format {fmt}, from a newer llmviz; this one "
                                      f"reads format {FORMAT} and shows what it understands"))
    steps = []
    for line, lines in chunks:
        step = _step(lines, line, path)
        steps.append(step)
        if step.problem:
            problems.append(step.problem)
    if not chunks:
        problems.append(LessonProblem(path, 1, "no steps: each step starts with a '## Title' line"))
    return Lesson(title=title, steps=tuple(steps), model=_str(table.get("model")), text=_str(table.get("text")),
                  path=path, format=fmt if isinstance(fmt, int) else FORMAT, problems=tuple(problems))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _step(lines: list[str], line: int, path: str) -> LessonStep:
    title = lines[0][3:].strip()
    table, markdown, toml_line, problem = _body(lines[1:], line + 1, path)

    def bad(message: str, key: str | None = None) -> LessonStep:
        at = _key_line(lines, line, key) if key else toml_line
        return LessonStep(title, str(table.get("view", "")), markdown, {}, line=line,
                          problem=LessonProblem(path, at, message))

    if problem:
        return LessonStep(title, "", markdown, line=line, problem=problem)
    unknown = sorted(set(table) - STEP_KEYS)
    if unknown:
        return bad(f"unknown setting {unknown[0]!r} (a step knows: {', '.join(sorted(STEP_KEYS))})", unknown[0])
    view = table.get("view")
    if not isinstance(view, str) or not view:
        return bad('the step names no view: add view = "attention" (or another dock name) to its ```toml block')
    state = table.get("state", {})
    if not isinstance(state, dict):
        return bad("state must be a table: [state] followed by name = value lines", "state")
    pick = table.get("pick")
    if pick is not None and pick not in PICKS:
        return bad(f"pick must be one of {', '.join(PICKS)}, not {pick!r}", "pick")
    for key in ("text", "model"):
        if key in table and not isinstance(table[key], str):
            return bad(f"{key} must be a quoted string", key)
    key_lines = {k: _key_line(lines, line, k) for k in [*table, *state]}
    return LessonStep(title, view, markdown, dict(state), _str(table.get("text")), _str(table.get("model")), pick, line,
                      key_lines=key_lines)


def check_views(lesson: Lesson, views: dict[str, tuple[str, ...]]) -> Lesson:
    """The lesson with a problem on each step whose view or settings the window does not have
    (`views`: dock name -> the STATE names its view restores)."""
    steps, problems = [], list(lesson.problems)
    for step in lesson.steps:
        if step.problem is None:
            message, at = "", step.key_lines.get("view", step.line)
            if step.view not in views:
                message = f"unknown view {step.view!r} (views: {', '.join(views)})"
            else:
                unknown = [k for k in step.state if k not in views[step.view]]
                if unknown:
                    at = step.key_lines.get(unknown[0], step.line)
                    message = (f"the {step.view} view has no setting {unknown[0]!r} "
                               f"(it has: {', '.join(views[step.view])})")
            if message:
                problem = LessonProblem(lesson.path, at, message)
                step = replace(step, problem=problem)
                problems.append(problem)
        steps.append(step)
    return replace(lesson, steps=tuple(steps), problems=tuple(problems))


# ---------------------------------------------------------------- writing


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'
    raise InputError(f"a lesson cannot hold the value {value!r}")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _value(key)


def dump_lesson(lesson: Lesson) -> str:
    """The lesson as text that `parse_lesson` reads back to the same steps."""
    out = [f"# {lesson.title}", "", "```toml", f"format = {FORMAT}"]
    for key in ("model", "text"):
        if getattr(lesson, key) is not None:
            out.append(f"{key} = {_value(getattr(lesson, key))}")
    out += ["```", ""]
    for step in lesson.steps:
        out += [f"## {step.title}", "", "```toml", f"view = {_value(step.view)}"]
        for key in ("pick", "text", "model"):
            if getattr(step, key) is not None:
                out.append(f"{key} = {_value(getattr(step, key))}")
        if step.state:
            out.append("[state]")
            out += [f"{_key(k)} = {_value(v)}" for k, v in step.state.items()]
        out += ["```", ""]
        if step.explanation:
            out += [step.explanation, ""]
    return "\n".join(out)
