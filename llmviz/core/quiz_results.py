"""What the quiz shows: frozen questions whose right answers the engine computed from the loaded
model (never stored), the notebook's own five questions, and the head statistics a lesson uses
to pick a previous-token head and an attention-sink head.  No torch here: views import these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class HeadStatistics:
    """Per layer and head, averaged over query positions: the share of attention on the token
    just before the query, and on the first token (a sink)."""

    trace_id: int
    previous: np.ndarray  # float32 [L, H]
    first: np.ndarray  # float32 [L, H]

    def best(self, which: str) -> tuple[int, int]:
        """(layer, head) of the strongest 'previous-token' or 'attention-sink' head."""
        m = self.previous if which == "previous-token" else self.first
        flat = int(np.nanargmax(m))
        return flat // m.shape[1], flat % m.shape[1]


@dataclass(frozen=True)
class Question:
    """One multiple-choice question; `show` opens the view that proves the answer."""

    key: str
    prompt: str
    choices: tuple[str, ...]
    answer: int  # index into choices
    explanation: str
    show_view: str
    show_state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Quiz:
    """The questions generated for one model and text."""

    trace_id: int
    model_title: str
    questions: tuple[Question, ...]
    values: dict[str, Any] = field(default_factory=dict)  # the computed right answers, raw (for tests)


#: The notebook's closing quiz: (prompt, answer, the view that demonstrates it, its state).
NOTEBOOK_QUESTIONS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("What are the three main components of a transformer block?",
     "Self-attention, a feed-forward network, and the residual connections with layer normalisation around each. "
     "The block builder assembles exactly these.", "architecture", {"tabs": 2}),
    ("How does attention differ from traditional RNN approaches?",
     "Every token looks at every earlier token directly, in one matrix product, instead of passing a state "
     "step by step; long-range links cost no more than short ones and the positions run in parallel.",
     "scratch", {"toy_mode": True}),
    ("What are the trade-offs between different quantization levels?",
     "Fewer bits shrink the weights (FP32 → INT4 is 8× smaller) and can speed inference, but add rounding error: "
     "the dial measures it as the KL divergence of the next-token distribution.", "quantization", {"tabs": 0}),
    ("Why do larger models generally perform better?",
     "Loss falls as a power law in parameters, data and compute (Kaplan 2020; Chinchilla 2022): more capacity, "
     "trained on enough tokens, keeps predicting text better, with diminishing returns.", "scaling", {}),
    ("What role does tokenization play in LLM performance?",
     "It decides what the model sees: how many tokens a text costs (context and compute), whether rare words and "
     "other scripts split into many pieces, and whether case and spaces survive.", "tokens", {"second": "bert-bundled"}),
)
