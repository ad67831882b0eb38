"""What the generation jobs send to the generation view: frozen dataclasses of numpy arrays (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sampling import is_greedy

#: Candidates each step reports (the most likely tokens of the model's distribution).
TOP_K_SHOWN = 10

FINISH_NOTICES = {
    "max_tokens": "Generated the requested number of tokens.",
    "eos": "The model produced its end-of-sequence token.",
    "context": "Stopped: the model's context length ({limit:,} tokens) is reached.",
    "cancelled": "Stopped. What was generated so far is kept.",
}


@dataclass(frozen=True)
class GenerationSettings:
    """How one generation picks its tokens and when it stops."""

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    seed: int = 0
    chat: bool = False
    stop_at_eos: bool = True
    record_attention: bool = True

    @property
    def greedy(self) -> bool:
        return not self.do_sample or is_greedy(self.temperature, self.top_k, self.top_p)


@dataclass(frozen=True)
class GenerationStep:
    """One generated token and the distribution it came from."""

    run_id: int
    step: int  # 0 for the first generated token
    token_id: int
    piece: str  # readable vocabulary piece
    text: str  # all generated text so far, decoded (special tokens skipped)
    prob: float  # probability the model gave the chosen token (temperature 1, no filters)
    sample_prob: float  # its probability under the sampling settings
    entropy_bits: float  # entropy of the model's distribution (temperature 1)
    latency_s: float  # this step's forward pass and choice (step 0 includes reading the prompt)
    top_ids: np.ndarray  # int64 [k]: the model's most likely tokens
    top_probs: np.ndarray  # float32 [k]
    top_pieces: tuple[str, ...]
    attention: np.ndarray | None  # eager models only: float32 [layers, context] (others: ask `attention_row`)
    context_len: int  # tokens the model had seen when it predicted this token
    prompt_tokens: int
    finished: str = ""  # '', 'max_tokens', 'eos', 'context' or 'cancelled'
    notice: str = ""
    prompt_text: str = ""  # step 0 only: the prompt as the model saw it (chat template applied)
    prompt_pieces: tuple[str, ...] = ()  # step 0 only


@dataclass(frozen=True)
class StepAttention:
    """Head-mean attention of the position that predicted step `step`, per layer."""

    run_id: int
    step: int
    matrix: np.ndarray  # float32 [layers, context]
