"""The quantization dial's tables: the comparison of every visited precision, the notebook's
size table, and one position's top-k lists of the reference and a variant side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor

from ..core.quantization_results import Comparison
from ..core.results import visible
from .frame_table import DataFrameModel, FrameTable

if TYPE_CHECKING:  # pandas is imported when a table is made, not when the window starts
    import pandas as pd

HEADERS = {
    "precision": "Precision", "bits": "Bits", "kind": "Kind", "memory_MiB": "Memory MiB",
    "footprint_MiB": "Footprint MiB", "scales_MiB": "Scales MiB", "linear_layers_MiB":
    "Linear layers MiB", "rss_change_MiB": "RSS Δ MiB", "cuda_change_MiB": "CUDA Δ MiB", "load_s": "Load s",
    "forward_s": "Forward s", "tokens": "Tokens", "mean_kl": "Mean KL", "top1_agreement": "Top-1 agree",
    "top5_overlap": "Top-5 overlap", "perplexity": "Perplexity", "reference_perplexity": "Ref. perplexity",
    "attention_max_abs_diff": "Max |Δ attn|", "last_layer_rel_error": "Last-layer drift", "device": "Device",
}
TOPK_COLUMNS = ["rank", "reference", "p_reference", "variant", "p_variant", "change"]


def dash_format(spec: str) -> Callable[[Any], str]:
    """A cell formatter that shows missing values as a dash."""
    def fmt(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        return format(value, spec)
    return fmt


FORMATS = {
    "memory_MiB": dash_format(",.1f"), "footprint_MiB": dash_format(",.1f"), "scales_MiB": dash_format(",.2f"),
    "linear_layers_MiB": dash_format(",.1f"), "rss_change_MiB": dash_format(",.0f"), "cuda_change_MiB": dash_format(",.0f"),
    "load_s": dash_format(".2f"), "forward_s": dash_format(".3f"), "tokens": dash_format(".0f"),
    "mean_kl": dash_format(".4g"), "top1_agreement": dash_format(".1%"), "top5_overlap": dash_format(".1%"),
    "perplexity": dash_format(".2f"), "reference_perplexity": dash_format(".2f"),
    "attention_max_abs_diff": dash_format(".3g"), "last_layer_rel_error": dash_format(".3g"),
}
SIZE_FORMATS = {"reduction": dash_format(".0f"), "savings_pct": dash_format(".1f"), "size_MiB": dash_format(",.1f")}
SIZE_COLUMNS = ["level", "bits", "reduction", "savings_pct", "size_MiB"]
SIZE_HEADERS = {"level": "Level", "bits": "Bits", "reduction": "× smaller", "savings_pct": "Saved %", "size_MiB": "Size MiB"}


def keep_source_order(table: FrameTable, sortable: bool) -> None:
    """Rows in the order given (dial order, rank); clicking a header still sorts where `sortable`."""
    table.setSortingEnabled(sortable)
    table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    table.proxy.sort(-1)


def probability_text(value: Any) -> str:
    """A probability with three decimals, or in scientific notation below 0.001; a dash when missing."""
    return "—" if value is None or math.isnan(value) else (f"{value:.3f}" if value >= 0.001 else f"{value:.1e}")


class TopKModel(DataFrameModel):
    """The top-k lists side by side; flipped tokens are tinted."""

    def __init__(self) -> None:
        super().__init__(TOPK_COLUMNS, headers={"rank": "#", "reference": "Reference", "p_reference": "p",
                                                "variant": "Variant", "p_variant": "p", "change": "Change"},
                         formatters={"p_reference": probability_text, "p_variant": probability_text})

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if index.isValid() and role == Qt.ItemDataRole.BackgroundRole:
            row = self.frame.iloc[index.row()]
            column = self.columns[index.column()]
            if column in ("reference", "p_reference") and row["ref_missing"]:
                return QBrush(QColor("#fde2c4"))
            if column in ("variant", "p_variant", "change") and row["change"] not in ("", "="):
                return QBrush(QColor("#fde7e9") if row["rank"] == 1 else QColor("#fff2cc"))
        return super().data(index, role)


# ---------------------------------------------------------------- the view


def topk_frame(q: Comparison, i: int) -> pd.DataFrame:
    """Position `i`'s top-k lists of the reference and the variant, with each variant token's change of rank."""
    import pandas as pd

    ref_ids, var_ids = q.topk_reference_ids[i], q.topk_variant_ids[i]
    ref_rank = {int(t): r for r, t in enumerate(ref_ids)}
    var_set = {int(t) for t in var_ids}
    rows = []
    for r in range(len(ref_ids)):
        v = int(var_ids[r])
        before = ref_rank.get(v)
        change = "new" if before is None else ("=" if before == r else (f"↑{before - r}" if before > r else f"↓{r - before}"))
        rows.append({"rank": r + 1, "reference": visible(q.pieces.get(int(ref_ids[r]), "?")),
                     "p_reference": float(q.topk_reference_probs[i, r]),
                     "variant": visible(q.pieces.get(v, "?")), "p_variant": float(q.topk_variant_probs[i, r]),
                     "change": change, "ref_missing": int(ref_ids[r]) not in var_set})
    return pd.DataFrame(rows)
