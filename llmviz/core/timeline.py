"""The history of language models: `resources/timeline.csv`, read with pandas and checked row by row.

The course notebook kept this data in a dict keyed by year, so LLaMA 2 (2023) silently
vanished behind GPT-4 (2023), and it quoted GPT-4's unofficial "~1.7T" as a size.  Here
each model is one CSV row with a release date, a source URL and a `size_status`
(official / estimate / unknown); sizes that were never published stay blank.

The file is meant to be edited by hand, so a damaged row must not take the rest down:
every problem becomes a `TimelineProblem` naming the file line, the row is skipped (or a
bad optional field cleared), and the remaining rows load.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from datetime import date as Date
from pathlib import Path
from typing import Any

import pandas as pd

from .atomic import write_csv
from .paths import resource
from .specs import ModelInfo

COLUMNS = ("name", "organisation", "date", "parameters", "active_parameters", "training_tokens",
           "family", "size_status", "hf_id", "source", "note")
SIZE_STATUSES = ("official", "estimate", "unknown")
COUNT_COLUMNS = ("parameters", "active_parameters", "training_tokens")
_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}
_COUNT = re.compile(r"^([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbt]?)$", re.IGNORECASE)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")


@dataclass(frozen=True)
class TimelineProblem:
    """One thing wrong with the file; `line` is the 1-based line in the file (0: the file as a whole)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True, eq=False)
class Timeline:
    """The rows that loaded (typed DataFrame, one row per model) and what was wrong with the others.

    Columns: those of the CSV with `date` as a Timestamp, counts as floats (NaN = not
    published), plus `date_precision` ('day' or 'month'), `year` and `line` (file line).
    """

    frame: pd.DataFrame
    problems: tuple[TimelineProblem, ...] = ()
    path: str = ""

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def families(self) -> list[str]:
        return list(dict.fromkeys(self.frame["family"])) if len(self.frame) else []

    def problem_summary(self, limit: int = 3) -> str:
        """A short user-facing summary naming the first few lines."""
        if not self.problems:
            return ""
        name = Path(self.path).name or "timeline data"
        shown = "; ".join(str(p) for p in self.problems[:limit])
        more = f" (and {len(self.problems) - limit} more)" if len(self.problems) > limit else ""
        return f"{name}: {shown}{more}"


# ------------------------------------------------------------------ parsing single values


def parse_count(text: str) -> float:
    """'175e9', '175000000000', '175B', '1,542M', '1.2T' -> float; '' -> NaN.  ValueError otherwise."""
    s = str(text).strip().replace(",", "").replace("_", "").replace(" ", "")
    if not s:
        return math.nan
    if s.startswith("~"):
        raise ValueError(f"{text!r} is approximate: write the number without '~' and set size_status to 'estimate'")
    m = _COUNT.match(s)
    if not m:
        raise ValueError(f"{text!r} is not a number (write e.g. 175e9 or 175B)")
    value = float(m.group(1)) * _SUFFIX.get(m.group(2).lower(), 1.0)
    if not value > 0:
        raise ValueError(f"{text!r} must be greater than zero")
    return value


def parse_date(text: str) -> tuple[pd.Timestamp, str]:
    """'2023-07-18' -> (Timestamp, 'day'); '2023-07' -> (first of the month, 'month')."""
    s = str(text).strip()
    if _DAY.match(s):
        return pd.Timestamp(pd.to_datetime(s, format="%Y-%m-%d")), "day"
    if _MONTH.match(s):
        return pd.Timestamp(pd.to_datetime(s, format="%Y-%m")), "month"
    raise ValueError(f"date {s!r} is not YYYY-MM-DD or YYYY-MM" if s else "the date is missing")


# ------------------------------------------------------------------ reading the file


def load_timeline(path: str | Path | None = None) -> Timeline:
    """Read the timeline CSV (default: resources/timeline.csv); never raises for bad content."""
    path = Path(path) if path is not None else resource("timeline.csv")
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Timeline(_empty_frame(), (TimelineProblem(0, f"Could not read {path}: {exc.strerror or exc}"),), str(path))
    problems: list[TimelineProblem] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8-sig", errors="replace")
        line = data[: exc.start].count(b"\n") + 1
        problems.append(TimelineProblem(line, "the file is not UTF-8; unreadable characters are shown as �"))
    timeline = parse_timeline(text, str(path))
    return Timeline(timeline.frame, tuple(problems) + timeline.problems, str(path))


def parse_timeline(text: str, path: str = "") -> Timeline:
    """Parse CSV text; see the module docstring for what happens to bad rows."""
    if not text.strip():
        return Timeline(_empty_frame(), (TimelineProblem(0, "The timeline file is empty."),), path)
    raw = _read_raw(text)
    problems: list[TimelineProblem] = []
    header = [str(h).strip().lower() for h in raw.iloc[0]]
    while header and not header[-1]:
        header.pop()
    width = len(header)
    missing = [c for c in ("name", "date") if c not in header]
    if missing:
        problems.append(TimelineProblem(1, f"the header has no {' or '.join(missing)} column, so no row can be read "
                                           f"(expected columns: {', '.join(COLUMNS)})"))
        return Timeline(_empty_frame(), tuple(problems), path)
    unknown = [h for h in header[:width] if h not in COLUMNS]
    if unknown:
        problems.append(TimelineProblem(1, f"unknown column(s) ignored: {', '.join(unknown)}"))
    absent = [c for c in COLUMNS if c not in header and c not in ("name", "date")]
    if absent:
        problems.append(TimelineProblem(1, f"missing column(s), read as empty: {', '.join(absent)}"))
    lines = _line_numbers(raw)
    records: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i in range(1, len(raw)):
        fields = [str(v) for v in raw.iloc[i]]
        if not any(f.strip() for f in fields):
            continue  # blank line
        line = lines[i]
        if any(f.strip() for f in fields[width:]):
            problems.append(TimelineProblem(line, f"more fields than the {width} columns of the header (a comma "
                                                  "inside a value needs \"quotes\"); the row was skipped"))
            continue
        row = {c: (fields[header.index(c)].strip() if c in header else "") for c in COLUMNS}
        record = _check_row(row, line, problems)
        if record is None:
            continue
        key = _normalise(record["name"])
        if key in seen:
            problems.append(TimelineProblem(line, f"{record['name']!r} already appears on line {seen[key]}; "
                                                  "the row was skipped (every model needs its own name)"))
            continue
        seen[key] = line
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=_frame_columns()) if records else _empty_frame()
    if len(frame):
        frame = frame.sort_values(["date", "name"], kind="stable").reset_index(drop=True)
    return Timeline(frame, tuple(problems), path)


def _read_raw(text: str) -> pd.DataFrame:
    """Every line as strings, blank lines kept, so row i maps back to a file line."""
    header = pd.read_csv(io.StringIO(text), header=None, nrows=1, dtype=str, keep_default_na=False, engine="python")
    width = header.shape[1] + 1  # one spare column catches rows with too many fields

    def keep_long_row(fields: list[str]) -> list[str]:
        return fields[:width]  # kept in place (still flagged below), so row numbers stay aligned

    raw = pd.read_csv(io.StringIO(text), header=None, names=range(width), dtype=str, keep_default_na=False,
                      skip_blank_lines=False, engine="python", on_bad_lines=keep_long_row)
    return raw.fillna("")


def _line_numbers(raw: pd.DataFrame) -> list[int]:
    """File line where each raw row starts (quoted values may span lines)."""
    lines, line = [], 1
    for i in range(len(raw)):
        lines.append(line)
        line += 1 + sum(str(v).count("\n") for v in raw.iloc[i])
    return lines


def _check_row(row: dict[str, str], line: int, problems: list[TimelineProblem]) -> dict[str, Any] | None:
    """Typed record, or None (with a problem recorded) if the row cannot be shown."""
    def skip(message: str) -> None:
        problems.append(TimelineProblem(line, f"{message}; the row was skipped"))

    name = row["name"]
    if not name:
        skip("the name is missing")
        return None
    try:
        when, precision = parse_date(row["date"])
    except ValueError as exc:
        skip(f"{name}: {exc}")
        return None
    if not row["source"]:
        skip(f"{name}: no source (every row needs a URL or reference for its figures)")
        return None
    status = row["size_status"].lower()
    if status not in SIZE_STATUSES:
        skip(f"{name}: size_status {row['size_status']!r} is not one of {', '.join(SIZE_STATUSES)}")
        return None
    counts: dict[str, float] = {}
    for column in COUNT_COLUMNS:
        try:
            counts[column] = parse_count(row[column])
        except ValueError as exc:
            if column == "parameters":
                skip(f"{name}: parameters {exc}")
                return None
            problems.append(TimelineProblem(line, f"{name}: {column} {exc}; left blank"))
            counts[column] = math.nan
    if status == "unknown" and math.isfinite(counts["parameters"]):
        problems.append(TimelineProblem(line, f"{name}: size_status is 'unknown' but a parameter count is given; "
                                              "the count is ignored (use 'estimate' for unofficial figures)"))
        counts["parameters"] = math.nan
    if status != "unknown" and not math.isfinite(counts["parameters"]):
        problems.append(TimelineProblem(line, f"{name}: no parameter count, so the size is shown as unknown"))
        status = "unknown"
    active = counts["active_parameters"]
    if math.isfinite(active) and not (math.isfinite(counts["parameters"]) and active <= counts["parameters"]):
        problems.append(TimelineProblem(line, f"{name}: active_parameters exceeds the total; left blank"))
        counts["active_parameters"] = math.nan
    family = row["family"] or "unspecified"
    if not row["family"]:
        problems.append(TimelineProblem(line, f"{name}: no family; shown as 'unspecified'"))
    return {
        "name": name, "organisation": row["organisation"], "date": when, "date_precision": precision,
        "year": int(when.year), **counts, "family": family, "size_status": status, "hf_id": row["hf_id"],
        "source": row["source"], "note": row["note"], "line": line,
    }


def _frame_columns() -> list[str]:
    return ["name", "organisation", "date", "date_precision", "year", *COUNT_COLUMNS, "family", "size_status",
            "hf_id", "source", "note", "line"]


def _empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in _frame_columns()})
    frame["date"] = pd.Series(dtype="datetime64[ns]")
    for c in COUNT_COLUMNS:
        frame[c] = pd.Series(dtype=float)
    return frame


# ------------------------------------------------------------------ the loaded model on the timeline

# Name parts that say how a checkpoint was tuned, stored or quantised, not which model it is.
_VARIANT = re.compile(r"-(instruct|chat|it|hf|base|pt|gguf|awq|gptq|bnb-4bit|fp16|bf16|f16|f32|int[48]|"
                      r"q\d(_[a-z0-9]+)*|v\d+(\.\d+)*)(?=-|$)")


def _normalise(text: str) -> str:
    """'meta-llama/Llama-2-7b-chat-hf', 'Llama 2 7B' and 'llama-2-7b.Q4_K_M.gguf' -> 'llama-2-7b'."""
    s = str(text).strip().lower()
    s = re.sub(r"\s*\(.*?\)\s*", " ", s).strip()  # '(Q4_1-dequantized)'
    s = s.rsplit("/", 1)[-1]
    s = re.sub(r"\.(gguf|safetensors|bin)$", "", s)
    s = re.sub(r"[\s_.]+(?=q\d)", "-", s)  # 'name.Q4_1' -> 'name-q4_1'
    s = re.sub(r"\s+", "-", s)
    previous = None
    while previous != s:
        previous, s = s, _VARIANT.sub("", s)
    return s


@dataclass(frozen=True)
class LoadedPoint:
    """Where the loaded model goes on the timeline, and where each figure came from."""

    label: str
    date: pd.Timestamp
    parameters: float
    training_tokens: float
    row: int | None  # index into Timeline.frame when the model is in the data
    parameters_from: str  # 'timeline' or 'loaded weights'
    date_known: bool
    notes: tuple[str, ...] = field(default_factory=tuple)


def match_model(timeline: Timeline, *names: str) -> int | None:
    """Index of the row whose name or hub id matches one of `names` (source, title, name_or_path)."""
    wanted = {_normalise(n) for n in names if n}
    wanted.discard("")
    if not wanted or not len(timeline):
        return None
    for i, (name, hf_id) in enumerate(zip(timeline.frame["name"], timeline.frame["hf_id"])):
        if _normalise(name) in wanted or (hf_id and _normalise(hf_id) in wanted):
            return i
    return None


def place_loaded_model(timeline: Timeline, info: ModelInfo, today: Date | None = None) -> LoadedPoint:
    """The loaded model as a point: the timeline's figures when it is listed, else its weights and today."""
    names = (info.source, info.title, str(info.config.get("_name_or_path", "")))
    row = match_model(timeline, *names)
    notes: list[str] = []
    if row is None:
        when = pd.Timestamp(today or Date.today())
        notes.append("not in the timeline data: drawn at today's date")
        params, source_of_params, tokens = float(info.num_parameters), "loaded weights", math.nan
        label = info.title
    else:
        rec = timeline.frame.iloc[row]
        when, label, tokens = rec["date"], str(rec["name"]), float(rec["training_tokens"])
        if math.isfinite(rec["parameters"]):
            params, source_of_params = float(rec["parameters"]), "timeline"
        else:
            params, source_of_params = float(info.num_parameters), "loaded weights"
            notes.append("size not in the timeline data: counted from the loaded weights")
    return LoadedPoint(label, pd.Timestamp(when), params, tokens, row, source_of_params, row is not None, tuple(notes))


def export_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write rows in the file's own format (dates as written, counts as plain numbers)."""
    out = frame.copy()
    if len(out):
        out["date"] = [d.strftime("%Y-%m-%d" if p == "day" else "%Y-%m") for d, p in zip(out["date"], out["date_precision"])]
    out = out[[c for c in COLUMNS if c in out.columns]]
    write_csv(out, path, index=False)
