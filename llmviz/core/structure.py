"""The module hierarchy of a model as flat arrays, for the model-tree view.

Parameters shared between modules (tied embeddings) are counted once, at the first
module that owns them in `named_modules()` order, and marked as tied at the others; so
the root's total equals `sum(p.numel() for p in model.parameters())`.  bitsandbytes
4-bit parameters are counted as the number of weights they represent (their packed
storage holds two per byte), with their real storage bytes beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the view imports this module's types; it must not pay for torch
    import torch


@dataclass(frozen=True)
class ModuleTree:
    """Node i: paths[i], its class, parent index (-1 for the root) and parameter counts."""

    paths: tuple[str, ...]
    classes: tuple[str, ...]
    parent: np.ndarray  # int32 [N]
    children: tuple[tuple[int, ...], ...]
    own_params: np.ndarray  # int64 [N]: parameters first owned by this module
    total_params: np.ndarray  # int64 [N]: unique parameters in the subtree
    trainable_params: np.ndarray  # int64 [N]: subtree, unique, requires_grad
    storage_bytes: np.ndarray  # int64 [N]: subtree, unique, real bytes in memory
    dtypes: tuple[str, ...]  # own parameters' dtype(s), '' when none
    devices: tuple[str, ...]
    shapes: tuple[str, ...]  # own parameters: 'weight [576, 1536], bias [...]'
    tied: tuple[str, ...]  # 'weight = model.embed_tokens.weight' for shared parameters, else ''
    quantized: tuple[bool, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, i: int) -> str:
        return self.paths[i].rsplit(".", 1)[-1] if self.paths[i] else self.classes[i]

    @property
    def total(self) -> int:
        return int(self.total_params[0]) if len(self) else 0


def represented_numel(p: "torch.Tensor") -> int:
    """Weights a parameter stands for: the original count for packed 4-bit bitsandbytes params."""
    qs = getattr(p, "quant_state", None)
    shape = getattr(qs, "shape", None)
    if shape is not None:
        return int(np.prod(tuple(shape)))
    return int(p.numel())


def module_tree(model: "torch.nn.Module") -> ModuleTree:
    """Walk the model once; O(modules + parameters) so 10^5-module models stay quick."""
    paths: list[str] = []
    classes: list[str] = []
    parent: list[int] = []
    index: dict[str, int] = {}
    own: list[int] = []
    trainable: list[int] = []
    nbytes: list[int] = []
    dtypes: list[str] = []
    devices: list[str] = []
    shapes: list[str] = []
    tied: list[str] = []
    quantized: list[bool] = []
    owner: dict[int, str] = {}
    for path, module in model.named_modules():
        i = len(paths)
        index[path] = i
        paths.append(path)
        classes.append(type(module).__name__)
        parent.append(-1 if path == "" else index.get(path.rsplit(".", 1)[0] if "." in path else "", 0))
        n = t = b = 0
        kinds: set[str] = set()
        devs: set[str] = set()
        shp: list[str] = []
        ties: list[str] = []
        q = False
        for pname, p in module._parameters.items():
            if p is None:
                continue
            full = f"{path}.{pname}" if path else pname
            shp.append(f"{pname} {list(p.shape)}")
            kinds.add(str(p.dtype).replace("torch.", ""))
            devs.add(str(p.device))
            if getattr(p, "quant_state", None) is not None or type(p).__name__ in ("Params4bit", "Int8Params"):
                q = True
            key = id(p)
            if key in owner:
                ties.append(f"{pname} = {owner[key]}")
                continue
            owner[key] = full
            count = represented_numel(p)
            n += count
            t += count if p.requires_grad else 0
            b += p.numel() * p.element_size()
        own.append(n)
        trainable.append(t)
        nbytes.append(b)
        dtypes.append(", ".join(sorted(kinds)))
        devices.append(", ".join(sorted(devs)))
        shapes.append("; ".join(shp))
        tied.append("; ".join(ties))
        quantized.append(q)
    par = np.asarray(parent, dtype=np.int32)
    total = np.asarray(own, dtype=np.int64)
    train = np.asarray(trainable, dtype=np.int64)
    store = np.asarray(nbytes, dtype=np.int64)
    kids: list[list[int]] = [[] for _ in paths]
    for i in range(len(paths) - 1, 0, -1):  # pre-order: children come after parents
        p = par[i]
        total[p] += total[i]
        train[p] += train[i]
        store[p] += store[i]
    for i in range(1, len(paths)):
        kids[par[i]].append(i)
    return ModuleTree(
        paths=tuple(paths), classes=tuple(classes), parent=par, children=tuple(tuple(k) for k in kids),
        own_params=np.asarray(own, dtype=np.int64), total_params=total, trainable_params=train,
        storage_bytes=store, dtypes=tuple(dtypes), devices=tuple(devices), shapes=tuple(shapes),
        tied=tuple(tied), quantized=tuple(quantized),
    )
