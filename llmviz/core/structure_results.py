"""What the model-tree view shows: the module hierarchy of a model as flat arrays, one
module's weight histogram, and which configuration values and transformer component
concern a module.  Frozen types of numpy arrays; no torch.

Parameters shared between modules (tied embeddings) are counted once, at the first
module that owns them in `named_modules()` order, and marked as tied at the others; so
the root's total equals `sum(p.numel() for p in model.parameters())`.  bitsandbytes
4-bit parameters are counted as the number of weights they represent (their packed
storage holds two per byte), with their real storage bytes (packed data plus the
quantization scales) beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:  # pandas is imported when a table is made, not when the window starts
    import pandas as pd

class ParamInfo(NamedTuple):
    """One parameter a module owns: name, the shape it represents, dtype, and how it is stored.

    A NamedTuple, not a frozen dataclass: a big model has 10^5 of them, and a NamedTuple is about
    three times cheaper to create.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    storage: str = ""  # e.g. 'packed uint8 [165888, 1]' for 4-bit weights; '' when stored as shown
    tied_to: str = ""  # full path of the first owner when this parameter is shared

    def text(self) -> str:
        dims = ", ".join(str(d) for d in self.shape)
        out = f"{self.name} [{dims}]"
        if self.storage:
            out += f" ({self.storage})"
        if self.tied_to:
            out += f" = {self.tied_to}"
        return out


@dataclass(frozen=True)
class ModuleTree:
    """Node i: paths[i], its class, parent index (-1 for the root) and parameter counts.

    Nodes are in pre-order (a parent comes before its children), as `named_modules()` gives them.
    """

    paths: tuple[str, ...]
    classes: tuple[str, ...]
    parent: np.ndarray  # int32 [N]
    row: np.ndarray  # int32 [N]: position among the parent's children
    depth: np.ndarray  # int16 [N]: 0 for the root
    child_start: np.ndarray  # int64 [N+1]: node i's children are child_index[child_start[i]:child_start[i+1]]
    child_index: np.ndarray  # int32 [N-1]
    own_params: np.ndarray  # int64 [N]: parameters first owned by this module
    total_params: np.ndarray  # int64 [N]: unique parameters in the subtree
    trainable_params: np.ndarray  # int64 [N]: subtree, unique, requires_grad
    storage_bytes: np.ndarray  # int64 [N]: subtree, unique, real bytes in memory
    per_use_params: np.ndarray  # int64 [N]: subtree, shared parameters counted again at each module (as torchinfo does)
    dtypes: tuple[str, ...]  # own parameters' dtype(s), '' when none
    devices: tuple[str, ...]
    params: tuple[tuple[ParamInfo, ...], ...]  # own parameters (tied ones included, marked)
    quantized: tuple[bool, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def num_children(self, i: int) -> int:
        return int(self.child_start[i + 1] - self.child_start[i])

    def child(self, i: int, row: int) -> int:
        return int(self.child_index[self.child_start[i] + row])

    def children(self, i: int) -> np.ndarray:
        return self.child_index[self.child_start[i]:self.child_start[i + 1]]

    def name(self, i: int) -> str:
        return self.paths[i].rsplit(".", 1)[-1] if self.paths[i] else self.classes[i]

    @property
    def total(self) -> int:
        return int(self.total_params[0]) if len(self) else 0

    def tied(self, i: int) -> str:
        """'weight = model.embed_tokens.weight' for parameters this module shares, else ''."""
        return "; ".join(f"{p.name} = {p.tied_to}" for p in self.params[i] if p.tied_to)

    def shapes(self, i: int) -> str:
        return "; ".join(p.text() for p in self.params[i])

    def tied_pairs(self) -> list[tuple[str, str, int]]:
        """(shared parameter path, first owner path, weights it holds) for every tied parameter."""
        out = []
        for i, params in enumerate(self.params):
            for p in params:
                if p.tied_to:
                    path = f"{self.paths[i]}.{p.name}" if self.paths[i] else p.name
                    out.append((path, p.tied_to, math.prod(p.shape)))
        return out

    def index_of_path(self, path: str) -> int:
        try:
            return self.paths.index(path)
        except ValueError:
            return -1

    def ancestors(self, i: int) -> list[int]:
        """Node indices from the root down to i (inclusive)."""
        chain = []
        while i >= 0:
            chain.append(i)
            i = int(self.parent[i])
        return chain[::-1]

    @cached_property
    def _search_keys(self) -> list[str]:
        return [f"{p}\t{c}".lower() for p, c in zip(self.paths, self.classes)]

    def matches(self, text: str) -> list[int]:
        """Nodes whose path or class contains `text` (case-insensitive), in tree order."""
        needle = text.strip().lower()
        if not needle or "\t" in needle:
            return []
        return [i for i, key in enumerate(self._search_keys) if needle in key]

    def to_frame(self) -> pd.DataFrame:
        """One row per module, for CSV export."""
        import pandas as pd

        return pd.DataFrame({
            "path": self.paths,
            "class": self.classes,
            "depth": self.depth.astype(np.int64),
            "parameters": self.total_params,
            "own_parameters": self.own_params,
            "trainable_parameters": self.trainable_params,
            "parameters_counted_per_use": self.per_use_params,
            "storage_bytes": self.storage_bytes,
            "dtype": self.dtypes,
            "device": self.devices,
            "quantized": self.quantized,
            "tied": [self.tied(i) for i in range(len(self))],
            "parameter_shapes": [self.shapes(i) for i in range(len(self))],
        })


# ------------------------------------------------------------------ config values that concern a module

# (words in a module's path or class, config-key fragments that describe such a module)
_CONFIG_TOPICS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("attn", "attention", "self", "q_proj", "k_proj", "v_proj", "o_proj", "query", "key", "value", "c_attn"),
     ("head", "attention", "rope", "kv", "hidden_size", "n_embd", "d_model", "position_embedding_type",
      "sliding_window", "qkv", "query_pre", "scale_attn")),
    (("mlp", "ffn", "feed_forward", "intermediate", "expert", "moe", "gate", "up_proj", "down_proj", "fc", "c_fc",
      "c_proj", "dense", "output"),
     ("intermediate", "act", "mlp", "ffn", "expert", "hidden_size", "n_inner", "d_ff", "n_embd", "d_model", "router",
      "moe", "topk", "top_k")),
    (("norm", "ln_", "layernorm", "layer_norm"), ("norm", "eps")),
    (("embed", "wte", "wpe", "shared", "token_type"),
     ("vocab", "hidden_size", "n_embd", "d_model", "pad_token", "max_position", "n_positions", "type_vocab",
      "tie_word", "position_embedding_type", "scale_embedding")),
    (("lm_head", "head", "classifier", "pooler", "score"), ("vocab", "tie_word", "num_labels", "pooler", "hidden_size")),
    (("rotary", "rope"), ("rope", "max_position", "head_dim")),
    (("layers", "layer", "blocks", "block", ".h.", "encoder", "decoder"),
     ("num_hidden_layers", "n_layer", "num_layers", "hidden_size", "n_embd", "d_model", "layer_types")),
)
_ROOT_KEYS = (
    "model_type", "architectures", "num_hidden_layers", "n_layer", "num_layers", "hidden_size", "n_embd", "d_model",
    "num_attention_heads", "n_head", "num_heads", "num_key_value_heads", "head_dim", "intermediate_size", "n_inner",
    "d_ff", "vocab_size", "max_position_embeddings", "n_positions", "tie_word_embeddings", "rope_parameters",
    "num_local_experts", "num_experts", "num_experts_per_tok", "is_encoder_decoder", "dtype",
)


def config_for_module(config: dict, path: str, class_name: str) -> list[tuple[str, Any]]:
    """The configuration values that describe the module at `path` (all main values for the root)."""
    flat = {k: v for k, v in config.items() if not k.startswith("_") and not isinstance(v, dict) or k == "rope_parameters"}
    if not path:
        return [(k, flat[k]) for k in _ROOT_KEYS if k in flat]
    text = f".{path.lower()}. {class_name.lower()}"
    wanted: list[str] = []
    for words, fragments in _CONFIG_TOPICS:
        if any(w in text for w in words):
            wanted.extend(f for f in fragments if f not in wanted)
    return [(k, v) for k, v in flat.items() if any(f in k.lower() for f in wanted)]


# ------------------------------------------------------------------ which part of a transformer a module is

COMPONENTS = ("embeddings", "attention", "feed-forward", "norms", "output head", "other")


def component_of(path: str, class_name: str) -> str:
    """Sort a module into one of COMPONENTS by its path and class (names transformers uses)."""
    p, c = path.lower(), class_name.lower()
    last = p.rsplit(".", 1)[-1]
    if "norm" in c or "norm" in last or last.startswith("ln"):
        return "norms"
    if "embedding" in c or any(w in last for w in ("embed", "wte", "wpe")):
        return "embeddings"
    if last in ("lm_head", "classifier", "score", "qa_outputs") or p.startswith(("lm_head", "cls.")):
        return "output head"
    if any(w in p for w in ("attn", "attention")):
        return "attention"
    if any(w in p for w in ("mlp", "ffn", "feed_forward", "intermediate", "expert", ".fc", "c_fc", "output.dense",
                            "block_sparse_moe", "moe")):
        return "feed-forward"
    return "other"


def params_by_component(tree: ModuleTree, root: int = 0) -> dict[str, int]:
    """Unique parameters under node `root`, summed per component (tied weights at their first owner)."""
    out = dict.fromkeys(COMPONENTS, 0)
    first, last = root, subtree_end(tree, root)
    base = tree.paths[root] + "." if tree.paths[root] else ""
    for i in range(first, last):
        n = int(tree.own_params[i])
        if n:
            out[component_of(tree.paths[i][len(base):] if i != root else "", tree.classes[i])] += n
    return out


def subtree_end(tree: ModuleTree, i: int) -> int:
    """One past the last node of i's subtree (pre-order keeps a subtree contiguous)."""
    d = tree.depth[i]
    later = np.nonzero(tree.depth[i + 1:] <= d)[0]
    return i + 1 + int(later[0]) if len(later) else len(tree)


@dataclass(frozen=True)
class WeightHistogram:
    """The values of one module's weights (its whole subtree, each shared tensor once)."""

    path: str
    counts: np.ndarray  # int64 [bins]
    edges: np.ndarray  # float64 [bins + 1]
    count: int
    mean: float
    std: float
    min: float
    max: float
    zeros: int
    tensors: int
    note: str = ""  # e.g. 'dequantized from nf4' or why there are no values

    @property
    def empty(self) -> bool:
        return self.count == 0
