"""Dock views.  Adding a view: one new file here plus one line in VIEWS."""

from __future__ import annotations

from .architecture import ArchitectureView
from .attention import AttentionView
from .base import DockView
from .layer_summary import LayerSummaryView
from .model_tree import ModelTreeView

VIEWS: list[type[DockView]] = [
    ModelTreeView,
    ArchitectureView,
    LayerSummaryView,
    AttentionView,
]


def view_names() -> list[str]:
    return [v.NAME for v in VIEWS]
