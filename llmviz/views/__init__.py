"""Dock views.  Adding a view: one new file here plus one line in VIEWS."""

from __future__ import annotations

from .architecture import ArchitectureView
from .attention import AttentionView
from .attention_scratch import ScratchView
from .base import DockView
from .environment import EnvironmentView
from .explain import ExplainView
from .generation import GenerationView
from .layer_summary import LayerSummaryView
from .model_tree import ModelTreeView
from .prediction import PredictionView
from .projection import ProjectionView
from .quantization import QuantizationView
from .quiz import QuizView
from .scaling import ScalingView
from .similarity import SimilarityView
from .timeline import TimelineView
from .tokens import TokensView

# Order = tab order within each dock area (the first of each area is raised by default).
VIEWS: list[type[DockView]] = [
    ModelTreeView,
    ArchitectureView,
    LayerSummaryView,
    AttentionView,
    ScratchView,
    SimilarityView,
    ProjectionView,
    PredictionView,
    GenerationView,
    ExplainView,
    QuantizationView,
    TimelineView,
    ScalingView,
    EnvironmentView,
    QuizView,
    TokensView,
]


def view_names() -> list[str]:
    return [v.NAME for v in VIEWS]
