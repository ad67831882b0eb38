"""The engine's job functions, by name: what views and the window ask the engine to run.

Each constant is the dotted path of a `fn(session, ctx, **kwargs)` in a `*_jobs` module
(or one of the few core modules that still hold their jobs). The window never imports
those modules — they import torch — so it names them here;
tests/core/test_targets.py resolves every constant in an engine-like process.
"""

from __future__ import annotations

_CORE = "llmviz.core."

LOAD = _CORE + "jobs.load"
RUN_TEXT = _CORE + "jobs.run_text"
ENVIRONMENT_REPORT = _CORE + "jobs.environment"

ATTENTION_MAP = _CORE + "attention_jobs.attention_map"
ATTENTION_ROW = _CORE + "attention_jobs.attention_row"
ATTENTION_PREFETCH = _CORE + "attention_jobs.prefetch_maps"
ATTENTION_OVERVIEW = _CORE + "attention_jobs.overview_layer"

EXPLAIN = _CORE + "explain_jobs.explain"
EXPLAIN_NEURONS = _CORE + "explain_jobs.neurons"
EXPLAIN_NEURON = _CORE + "explain_jobs.neuron_detail"

SCRATCH_TOY = _CORE + "scratch.toy_walkthrough"
SCRATCH_HEAD = _CORE + "scratch.head_walkthrough"

SIMILARITY_MAP = _CORE + "embeddings_jobs.similarity_map"
SIMILARITY_COMPARE = _CORE + "embeddings_jobs.compare_texts"
SIMILARITY_CROSS = _CORE + "embeddings_jobs.cross_map"
PROJECTION = _CORE + "embeddings_jobs.projection"

PREDICTION_NEXT = _CORE + "prediction_jobs.next_token"
PREDICTION_LENS = _CORE + "prediction_jobs.logit_lens"

GENERATION_START = _CORE + "generation_jobs.start"
GENERATION_STEP = _CORE + "generation_jobs.step"
GENERATION_ATTENTION = _CORE + "generation_jobs.attention_row"

TOKENIZERS_WARM = _CORE + "tokenizers_jobs.warm"
TOKENIZERS_COMPARE = _CORE + "tokenizers_jobs.compare"

STRUCTURE_TREE = _CORE + "structure_jobs.structure"
STRUCTURE_WEIGHTS = _CORE + "structure_jobs.module_weights"
LAYER_SUMMARY = _CORE + "structure_jobs.layer_summary"
ARCHITECTURE_SUMMARY = _CORE + "structure_jobs.architecture"
ARCHITECTURE_FAMILIES = _CORE + "structure_jobs.families"
ARCHITECTURE_BLOCK = _CORE + "structure_jobs.build_block"

QUANTIZATION_STATE = _CORE + "quantization_jobs.dial_state"
QUANTIZATION_VISIT = _CORE + "quantization_jobs.visit"
QUANTIZATION_REFRESH = _CORE + "quantization_jobs.refresh"
QUANTIZATION_HEAD = _CORE + "quantization_jobs.head_diff"

QUIZ_HEAD_STATISTICS = _CORE + "quiz_jobs.head_statistics"
QUIZ_QUESTIONS = _CORE + "quiz_jobs.questions"

ENVIRONMENT_SNAPSHOT = _CORE + "environment.snapshot"


def all_targets() -> dict[str, str]:
    """Every constant above, by name."""
    return {k: v for k, v in globals().items() if k.isupper() and not k.startswith("_") and isinstance(v, str)}
