"""Session files: what an instructor prepares at home and opens in class (no Qt here).

A session is one JSON object (documented in docs/lessons.md, "Sessions")::

    {
      "llmviz_session": 1,                 # the format; a newer one is read as far as understood
      "saved_by": "llmviz 0.9.0",
      "model": {"source": "bundled:smollm2", "device": "cpu", "dtype": "auto"},
      "text": "The cat sat on the mat",
      "layout": "<base64 of QMainWindow.saveState()>",
      "views": {"attention": {"layer": 3, "head": 5, "tabs": 0}, ...},
      "lesson": {"path": "lesson.md", "step": 4} | null,
      "presentation": false
    }

`views` holds each view's `state()` (the same settings a restarted engine puts back).
Files are written atomically: a crash never leaves half a session.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import write_text
from .errors import InputError

FORMAT = 1
KEY = "llmviz_session"


@dataclass
class SessionData:
    model_source: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    text: str = ""
    layout: bytes = b""
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    lesson_path: str | None = None
    lesson_step: int = 0
    presentation: bool = False
    saved_by: str = ""
    notes: list[str] = field(default_factory=list)  # what could not be read, for the user

    def to_json(self) -> str:
        doc = {
            KEY: FORMAT,
            "saved_by": self.saved_by,
            "model": {"source": self.model_source, "device": self.device, "dtype": self.dtype},
            "text": self.text,
            "layout": base64.b64encode(self.layout).decode("ascii"),
            "views": self.views,
            "lesson": {"path": self.lesson_path, "step": self.lesson_step} if self.lesson_path else None,
            "presentation": self.presentation,
        }
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write_session(path: str | Path, data: SessionData) -> None:
    write_text(path, data.to_json())


def _get(doc: dict, key: str, kind: type, default: Any, notes: list[str]) -> Any:
    value = doc.get(key, default)
    if not isinstance(value, kind):
        notes.append(f"'{key}' was not understood and was skipped.")
        return default
    return value


def parse_session(text: str, path: str = "<session>") -> SessionData:
    """A SessionData from JSON; InputError when it is not a session at all, notes for parts skipped."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{Path(path).name} is not a session file: line {exc.lineno}: {exc.msg}.") from None
    if not isinstance(doc, dict) or KEY not in doc:
        raise InputError(f"{Path(path).name} is not an llmviz session (no '{KEY}' key).")
    notes: list[str] = []
    version = doc.get(KEY)
    if not isinstance(version, int) or version > FORMAT:
        notes.append(f"This session is format {version} from a newer llmviz; this one reads format {FORMAT} "
                     "and restored what it understands.")
    model = _get(doc, "model", dict, {}, notes)
    layout = b""
    try:
        layout = base64.b64decode(_get(doc, "layout", str, "", notes), validate=True)
    except ValueError:
        notes.append("The window layout was damaged and was skipped.")
    views = {k: v for k, v in _get(doc, "views", dict, {}, notes).items() if isinstance(v, dict)}
    lesson = doc.get("lesson") if isinstance(doc.get("lesson"), dict) else {}
    source = model.get("source")
    return SessionData(
        model_source=source if isinstance(source, str) else None,
        device=str(model.get("device") or "auto"), dtype=str(model.get("dtype") or "auto"),
        text=_get(doc, "text", str, "", notes), layout=layout, views=views,
        lesson_path=lesson.get("path") if isinstance(lesson.get("path"), str) else None,
        lesson_step=int(lesson.get("step", 0)) if isinstance(lesson.get("step", 0), int) else 0,
        presentation=bool(doc.get("presentation", False)), saved_by=str(doc.get("saved_by", "")), notes=notes)


def read_session(path: str | Path) -> SessionData:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Could not read the session {path}: {exc}") from None
    return parse_session(text, str(path))
