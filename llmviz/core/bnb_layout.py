"""Keep bitsandbytes' 4-bit weights in their standard layout on every CPU.

On CPUs with AVX512-BF16, bitsandbytes >= 0.50 repacks a Linear4bit's weight and quant
state in place on its first CPU forward (a faster kernel's layout: nibbles regrouped,
absmax transposed to bf16, nested statistics flattened).  That rewrite
- fails for layers narrower than a quantization block (64 inputs) or with an output count
  not divisible by 32 ("shape '[32, 0]' is invalid" from a forward);
- changes what llmviz measures and shows after the first run: the quantization constants'
  bytes, and the dequantized weights of the model tree's histogram (which then come out
  wrong, since `dequantize_4bit` expects the standard layout).
So results would depend on the CPU model.  llmviz turns that repacking off through the flag
the layer itself checks; the generic CPU kernel computes the same matmul (more slowly on those
CPUs: 4-bit on the CPU is for looking at, a GPU is for speed).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: The attribute bitsandbytes' Linear4bit.forward reads before repacking (set in its __init__).
REPACK_FLAG = "support_avx512bf16_for_cpu"


def keep_standard_4bit_layout(model: torch.nn.Module) -> int:
    """Turn off the CPU repacking on every Linear4bit under `model`; returns how many layers."""
    bnb = sys.modules.get("bitsandbytes")
    if bnb is None:  # a model cannot hold bitsandbytes layers before bitsandbytes is imported
        return 0
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for layer in layers:
        if hasattr(layer, REPACK_FLAG):
            setattr(layer, REPACK_FLAG, False)
    return len(layers)
