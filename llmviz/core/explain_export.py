"""Explanations as tables: attributions.csv and faithfulness.csv (the CLI and the dock's export).

numpy and pandas only, so the window can export what it already holds without the engine.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .atomic import AtomicGroup, created_folder, remove_stale_temporaries
from .explain_results import Explanation

FAITHFULNESS_COLUMNS = ["method", "fraction", "removed_score", "kept_score", "comprehensiveness", "sufficiency"]


def attributions_frame(result: Explanation) -> pd.DataFrame:
    """position, token, token_id, then one column per method (gxi, ig, occlusion, rollout, vnorm)."""
    return pd.DataFrame(result.attribution_columns())


def faithfulness_frame(result: Explanation) -> pd.DataFrame:
    """One row per (method, fraction), with each method's areas."""
    return pd.DataFrame(result.faithfulness_rows(), columns=FAITHFULNESS_COLUMNS)


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
