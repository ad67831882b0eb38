"""What the quantization jobs send to the quantization view: the dial's precisions and frozen
results of numpy arrays (no torch), and the pandas tables the view exports.

Real modes load a variant of the reference model's own source: FP32/BF16/FP16 as torch
dtypes, INT8 (bitsandbytes LLM.int8) and NF4/FP4 with or without double quantization
(bitsandbytes 4-bit).  INT2 and INT1 are SIMULATED: the weights of the layers bitsandbytes
would quantize are rounded to 2**bits levels per output channel (round-to-nearest on an
absmax grid) and kept in the load dtype, so they save no memory; every label says "simulated".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError
from .specs import ModelInfo

if TYPE_CHECKING:  # pandas is imported when a table is made, not when the window starts
    import pandas as pd

TOP_K = 10


# ---------------------------------------------------------------- the precisions


@dataclass(frozen=True)
class Precision:
    """One position of the dial."""

    key: str
    label: str
    short: str  # the dial's label
    bits: int
    kind: str  # 'dtype', 'int8', '4bit' or 'simulated'
    summary: str
    dtype: str = ""  # torch dtype name for kind 'dtype'
    quant_type: str = ""  # 'nf4' / 'fp4' for kind '4bit'
    double_quant: bool = False

    @property
    def simulated(self) -> bool:
        return self.kind == "simulated"

    @property
    def uses_bitsandbytes(self) -> bool:
        return self.kind in ("int8", "4bit")


def _four_bit(key: str, name: str, summary: str) -> tuple[Precision, Precision]:
    """A bitsandbytes 4-bit type's two positions: without and with double quantization."""
    return (Precision(key, name, name, 4, "4bit", summary, quant_type=key),
            Precision(f"{key}-dq", f"{name} + double quant", f"{name}+DQ", 4, "4bit",
                      f"{name} whose block scales are themselves quantized to 8 bits (double quantization).",
                      quant_type=key, double_quant=True))


_SIM = ("SIMULATED: the weights bitsandbytes would quantize are rounded to {n} levels per output channel "
        "(round-to-nearest, absmax grid) and kept in the load dtype, so no memory is saved.")
PRECISIONS: tuple[Precision, ...] = (
    Precision("fp32", "FP32", "FP32", 32, "dtype", "32-bit floats, the CPU default.", dtype="float32"),
    Precision("bf16", "BF16", "BF16", 16, "dtype", "bfloat16: the range of fp32 with an 8-bit mantissa.",
              dtype="bfloat16"),
    Precision("fp16", "FP16", "FP16", 16, "dtype", "IEEE half precision: 11-bit mantissa, largest value 65,504.",
              dtype="float16"),
    Precision("int8", "INT8", "INT8", 8, "int8",
              "bitsandbytes LLM.int8(): int8 weights with one scale per output row; input features with "
              "outliers above 6 are multiplied in fp16."),
    *_four_bit("nf4", "NF4", "bitsandbytes 4-bit NormalFloat: 16 levels spaced for normally distributed "
               "weights, one absmax per block of 64 weights."),
    *_four_bit("fp4", "FP4", "bitsandbytes 4-bit float (sign, 2 exponent bits, 1 mantissa bit), one absmax per "
               "block of 64 weights."),
    Precision("int2-sim", "INT2 (simulated)", "INT2 sim", 2, "simulated", _SIM.format(n=4, b=2)),
    Precision("int1-sim", "INT1 (simulated)", "INT1 sim", 1, "simulated", _SIM.format(n=2, b=1)),
)
_BY_KEY = {p.key: p for p in PRECISIONS}
DTYPE_KEYS = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
QUANT_KEYS = {"int8": "int8", "nf4": "nf4", "nf4-dq": "nf4-dq", "fp4": "fp4", "fp4-dq": "fp4-dq"}
#: The notebook's theoretical size table.
NOTEBOOK_LEVELS = (("FP32", 32), ("FP16", 16), ("INT8", 8), ("INT4", 4), ("INT2", 2), ("INT1", 1))


def precision(key: str) -> Precision:
    """The dial position `key` (InputError for an unknown key)."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise InputError(f"Unknown precision {key!r}; choose one of {', '.join(_BY_KEY)}.") from None


def reference_key(info: ModelInfo) -> str | None:
    """The dial position the loaded model itself occupies (None for dtypes/quantizations not on the dial)."""
    if info.quantization != "none":
        return QUANT_KEYS.get(info.quantization)
    return DTYPE_KEYS.get(info.dtype)

# ---------------------------------------------------------------- result types


@dataclass(frozen=True)
class SizeRow:
    """One row of the notebook's table: parameters x bits / 8."""

    level: str
    bits: int
    reduction: float  # times smaller than FP32
    savings_pct: float
    size_bytes: float


def theoretical_sizes(num_parameters: int) -> tuple[SizeRow, ...]:
    """The notebook's size table for a model of `num_parameters`."""
    return tuple(SizeRow(level, bits, 32 / bits, (1 - bits / 32) * 100, num_parameters * bits / 8)
                 for level, bits in NOTEBOOK_LEVELS)


@dataclass(frozen=True)
class ModeStatus:
    """Whether a dial position can run here; `reason` (shown on hover) when it cannot."""

    key: str
    available: bool
    reason: str = ""
    note: str = ""  # caveats when it can run (emulated dtype, simulated, is the reference)
    estimated_bytes: int = 0
    memory_only: bool = False  # unavailable only for lack of free memory (checked again when visited)


@dataclass(frozen=True)
class DialState:
    """What the dial shows for the loaded model, before anything is measured."""

    model_source: str
    model_title: str
    reference_key: str | None
    reference_label: str  # e.g. 'FP32' or 'NF4 (already quantized in its checkpoint)'
    reference_note: str  # non-empty when the loaded model is already quantized
    device: str
    device_note: str  # where variants load; the CUDA gate message
    num_parameters: int
    quantizable_parameters: int  # weights of the layers bitsandbytes replaces
    quantizable_modules: int
    reference_bytes: int
    statuses: tuple[ModeStatus, ...]
    theoretical: tuple[SizeRow, ...]

    def status(self, key: str) -> ModeStatus:
        return next(s for s in self.statuses if s.key == key)


@dataclass(frozen=True)
class VariantCosts:
    """Measured costs of one precision (not computed from bits)."""

    key: str
    footprint_bytes: int  # model.get_memory_footprint(): parameters and buffers
    constants_bytes: int  # quantization constants (absmax, SCB) that get_memory_footprint() misses
    linear_bytes: int  # the quantized linear layers incl. their scales (absmax, SCB)
    linear_fp32_bytes: int  # the same layers' weights in fp32
    rss_delta_bytes: int | None  # process RSS change while loading (None for the reference)
    cuda_delta_bytes: int | None  # CUDA memory allocated by the load (None without CUDA)
    load_s: float
    forward_s: float  # one forward pass over the compared tokens, all logits
    forward_tokens: int
    from_cache: bool
    is_reference: bool
    device: str
    quantized_modules: int
    module_class: str  # 'Linear8bitLt', 'Linear4bit', 'Linear' ...

    @property
    def memory_bytes(self) -> int:
        """Everything the weights occupy: parameters, buffers and quantization constants."""
        return self.footprint_bytes + self.constants_bytes


@dataclass(frozen=True)
class Comparison:
    """Predictions and hidden states of one precision against the reference, on one text."""

    key: str
    trace_id: int
    num_tokens: int
    full_tokens: int  # tokens in the trace; more than num_tokens when only a prefix was compared
    distribution: str  # 'next-token', 'token' (an encoder's LM head) or '' (no logits)
    kl: np.ndarray  # float32 [T]: KL(reference || variant) per position, nats
    top1_agree: np.ndarray  # bool [T]
    top5_overlap: np.ndarray  # float32 [T]: shared tokens of the two top-5 lists / 5
    nll_reference: np.ndarray  # float32 [T-1]: -log p(actual next token) (decoders)
    nll_variant: np.ndarray
    topk_reference_ids: np.ndarray  # int64 [T, K]
    topk_reference_probs: np.ndarray  # float32 [T, K]
    topk_variant_ids: np.ndarray
    topk_variant_probs: np.ndarray
    pieces: dict[int, str] = field(default_factory=dict, compare=False)  # id -> decoded text of the token
    hidden_relative_error: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # [layers + 1]

    @property
    def has_distributions(self) -> bool:
        return bool(self.distribution)

    @property
    def mean_kl(self) -> float:
        return float(self.kl.mean()) if self.kl.size else math.nan

    @property
    def top1_rate(self) -> float:
        return float(self.top1_agree.mean()) if self.top1_agree.size else math.nan

    @property
    def top5_rate(self) -> float:
        return float(self.top5_overlap.mean()) if self.top5_overlap.size else math.nan

    @property
    def perplexity_reference(self) -> float:
        return float(np.exp(self.nll_reference.mean())) if self.nll_reference.size else math.nan

    @property
    def perplexity_variant(self) -> float:
        return float(np.exp(self.nll_variant.mean())) if self.nll_variant.size else math.nan

    @property
    def flips(self) -> np.ndarray:
        """Positions whose most likely token differs from the reference's."""
        return np.flatnonzero(~self.top1_agree)


@dataclass(frozen=True)
class HeadDiff:
    """One attention head of the reference and of a variant, and reference minus variant."""

    key: str
    trace_id: int
    layer: int
    head: int
    reference: np.ndarray  # float32 [T, T]
    variant: np.ndarray
    note: str = ""

    @property
    def diff(self) -> np.ndarray:
        return self.reference - self.variant

    @property
    def max_abs(self) -> float:
        return float(np.abs(self.diff).max()) if self.diff.size else 0.0


@dataclass(frozen=True)
class ModeReport:
    """Everything one visit of a dial position measured."""

    key: str
    costs: VariantCosts
    comparison: Comparison
    head: HeadDiff | None
    cached: tuple[str, ...]  # the variants now in the cache, oldest first


# ---------------------------------------------------------------- tables (pandas, no torch)


def comparison_frame(reports: Sequence[ModeReport], trace_id: int | None) -> pd.DataFrame:
    """One row per visited precision, in dial order; quality columns are empty for other texts."""
    import pandas as pd

    order = {p.key: i for i, p in enumerate(PRECISIONS)}
    rows = []
    for r in sorted(reports, key=lambda r: order[r.key]):
        p, c, q = precision(r.key), r.costs, r.comparison
        current = q.trace_id == trace_id
        mib = lambda n: n / 2**20 if n is not None else math.nan  # noqa: E731
        rows.append({
            "precision": p.label + (" (reference)" if c.is_reference else ""),
            "bits": p.bits,
            "kind": "simulated" if p.simulated else ("bitsandbytes" if p.uses_bitsandbytes else "torch dtype"),
            "memory_MiB": mib(c.memory_bytes),
            "footprint_MiB": mib(c.footprint_bytes),
            "scales_MiB": mib(c.constants_bytes),
            "linear_layers_MiB": mib(c.linear_bytes),
            "rss_change_MiB": mib(c.rss_delta_bytes),
            "cuda_change_MiB": mib(c.cuda_delta_bytes),
            "load_s": c.load_s,
            "forward_s": c.forward_s if current else math.nan,
            "tokens": q.num_tokens if current else math.nan,
            "mean_kl": q.mean_kl if current else math.nan,
            "top1_agreement": q.top1_rate if current else math.nan,
            "top5_overlap": q.top5_rate if current else math.nan,
            "perplexity": q.perplexity_variant if current else math.nan,
            "reference_perplexity": q.perplexity_reference if current else math.nan,
            "attention_max_abs_diff": r.head.max_abs if current and r.head is not None else math.nan,
            "last_layer_rel_error": float(q.hidden_relative_error[-1]) if current and q.hidden_relative_error.size
            else math.nan,
            "device": c.device,
        })
    return pd.DataFrame(rows)


def theoretical_frame(num_parameters: int) -> pd.DataFrame:
    """The notebook's size table as a DataFrame (sizes in MiB)."""
    import pandas as pd

    return pd.DataFrame([{"level": r.level, "bits": r.bits, "reduction": r.reduction, "savings_pct": r.savings_pct,
                          "size_MiB": r.size_bytes / 2**20} for r in theoretical_sizes(num_parameters)])

