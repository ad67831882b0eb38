"""What the layer-summary view shows: one row per module of a measured forward pass.

The notebook printed this table with torchinfo; llmviz measures it instead (see `layer_summary`).
Parameter counts come from the module tree, so tied weights are counted once; the
'counted per use' column repeats a shared weight at each module that uses it, which is
what torchinfo's total adds up (its 'Total params' counts a tied embedding twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported when a table is made, not when the window starts
    import pandas as pd

@dataclass(frozen=True)
class LayerSummary:
    """One row per module in the order the forward pass first called it."""

    trace_id: int
    model_title: str
    num_tokens: int
    frame: pd.DataFrame  # see COLUMNS
    chart: tuple[int, ...]  # frame rows that partition the forward: embeddings, each block, final norm, head
    forward_s: float  # wall time of the hooked forward
    unique_params: int
    per_use_params: int
    tied: tuple[tuple[str, str, int], ...]  # (shared parameter, first owner, weights)
    not_run: tuple[str, ...]  # modules the forward never called (ModuleList containers, unused dropouts)
    notes: tuple[str, ...] = ()

    @property
    def double_counted(self) -> int:
        return self.per_use_params - self.unique_params

    def explain_totals(self) -> str:
        """Why torchinfo's 'Total params' differs from the unique count, in one sentence."""
        if not self.tied:
            return f"{self.unique_params:,} parameters; no weights are shared, so torchinfo's total agrees."
        pairs = "; ".join(f"{a} is {b} ({n:,})" for a, b, n in self.tied)
        return (f"{self.unique_params:,} unique parameters. Counted at each module that uses them, as torchinfo's "
                f"'Total params' does, they are {self.per_use_params:,}: {pairs}, so that weight is counted twice.")


COLUMNS = ("order", "path", "class", "depth", "output_shape", "output_type", "calls", "time_ms", "self_ms", "time_pct",
           "parameters", "parameters_per_use", "own_parameters", "tied")

