"""Explanations as tables: attributions.csv and faithfulness.csv (the CLI and the dock's export).

numpy and pandas only, so the window can export what it already holds without the engine.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .atomic import AtomicGroup, created_folder, remove_stale_temporaries
from .explain_results import METHODS, RANDOM, Explanation


def attributions_frame(result: Explanation) -> pd.DataFrame:
    """position, token, token_id, then one column per method (gxi, ig, occlusion, rollout, vnorm)."""
    frame = pd.DataFrame({"position": range(len(result.tokens)), "token": list(result.tokens),
                          "token_id": result.token_ids})
    for method in result.methods:
        frame[method] = result.attributions[method]
    return frame


def faithfulness_frame(result: Explanation) -> pd.DataFrame:
    """One row per (method, fraction): f with the top fraction removed and with only it kept,
    and each method's areas (ERASER's AOPC comprehensiveness and sufficiency) on every row."""
    rows = []
    for method in [m for m in METHODS if m in result.faithfulness] + ([RANDOM] if RANDOM in result.faithfulness else []):
        faith = result.faithfulness[method]
        for fraction, removed, kept in zip(faith.fractions, faith.removed, faith.kept):
            rows.append({"method": method, "fraction": float(fraction), "removed_score": float(removed),
                         "kept_score": float(kept), "comprehensiveness": faith.comprehensiveness,
                         "sufficiency": faith.sufficiency})
    return pd.DataFrame(rows, columns=["method", "fraction", "removed_score", "kept_score", "comprehensiveness",
                                       "sufficiency"])


def write_explanation(result: Explanation, out: Path) -> list[Path]:
    """Both files into `out` (created), all or nothing."""
    paths = [out / "attributions.csv", out / "faithfulness.csv"]
    frames = [attributions_frame(result), faithfulness_frame(result)]
    with created_folder(out), AtomicGroup() as group:
        remove_stale_temporaries(out)
        for path, frame in zip(paths, frames):
            with group.path(path) as tmp:
                frame.to_csv(tmp, index=False, float_format="%.8g")
    return paths
