"""Dock views.  Adding a view: one new file here plus one line in VIEWS."""

from __future__ import annotations

from .architecture import ArchitectureView
from .attention import AttentionView
from .base import DockView
from .environment import EnvironmentView
from .layer_summary import LayerSummaryView
from .model_tree import ModelTreeView
from .scaling import ScalingView
from .timeline import TimelineView

VIEWS: list[type[DockView]] = [
    ModelTreeView,
    ArchitectureView,
    LayerSummaryView,
    AttentionView,
    TimelineView,
    ScalingView,
    EnvironmentView,
]


def view_names() -> list[str]:
    return [v.NAME for v in VIEWS]
