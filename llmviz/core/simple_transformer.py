"""The notebook's SimpleTransformerBlock, with the norm placement as a choice.

Post-norm (`x = norm(x + sublayer(x))`) is what the notebook and the original Transformer
and BERT do; pre-norm (`x = x + sublayer(norm(x))`) is what GPT-2, Llama and most modern
decoders do.  Built and run on the worker by `block_builder.build_and_run`.
"""

from __future__ import annotations

import torch
from torch import nn


class SimpleTransformerBlock(nn.Module):
    """Self-attention and a ReLU feed-forward network, each with a residual connection and a LayerNorm."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, pre_norm: bool = False) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.attention = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(embed_dim, ff_dim),
            nn.ReLU(),
            nn.Linear(ff_dim, embed_dim),
        )
        self.dropout = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            h = self.norm1(x)
            x = x + self.dropout(self.attention(h, h, h, need_weights=False)[0])
            return x + self.dropout(self.feed_forward(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.attention(x, x, x, need_weights=False)[0]))
        return self.norm2(x + self.dropout(self.feed_forward(x)))


class SimpleTransformer(nn.Sequential):
    """`num_blocks` SimpleTransformerBlocks one after another."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, num_blocks: int, pre_norm: bool = False) -> None:
        super().__init__(*(SimpleTransformerBlock(embed_dim, num_heads, ff_dim, pre_norm) for _ in range(num_blocks)))
