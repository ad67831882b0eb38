"""MLP neurons behind a prediction.

A neuron is one input unit of a block's MLP output projection (`down_proj` in Llama,
`c_proj` in GPT-2, `output.dense` in BERT), found by shape: the linear map from the MLP
width to the model width.  Its activation is what that projection receives; its write to
the residual stream is activation × the projection's column.  For decoders that write is
read through the final norm (frozen at the position's own scale, which makes it linear)
and the output head's row of the target token: the neuron's direct contribution to the
target logit.  The same read over the whole vocabulary gives the tokens it promotes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .errors import LlmvizError
from .explain_results import NeuronDetail, NeuronTable
from .models import LoadedModel
from .prediction import final_norm, output_head
from .tasks import TaskContext
from .trace import forward_inputs, layer_modules

EXTRAS_KEY = "neurons"


def down_projection(block: torch.nn.Module, width: int) -> tuple[torch.nn.Module, torch.Tensor]:
    """(module, W [width_out=D, neurons]) of the block's MLP output projection."""
    best: tuple[torch.nn.Module, torch.Tensor] | None = None
    for _name, module in block.named_modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
            continue
        if isinstance(module, torch.nn.Linear) and weight.shape[0] == width and weight.shape[1] > width:
            best = (module, weight)
        elif type(module).__name__ == "Conv1D" and weight.shape[1] == width and weight.shape[0] > width:
            best = (module, weight.T)
    if best is None:
        raise LlmvizError("No MLP output projection (a linear map from the MLP width to the model width) "
                          "was found in this model's blocks.")
    return best


def _activations(loaded: LoadedModel, ids: np.ndarray, layer: int, extras: dict) -> dict[str, Any]:
    """The layer's neuron activations [T, I] and the final-norm inputs [T, D] (cached per text)."""
    info = loaded.info
    if not 0 <= layer < info.num_layers:
        raise LlmvizError(f"Layer {layer} is not in this model ({info.num_layers} layers: 0..{info.num_layers - 1}).")
    key = (id(loaded.model), ids.tobytes(), layer)
    cached = extras.get(EXTRAS_KEY)
    if isinstance(cached, dict) and cached.get("key") == key:
        return cached
    blocks = layer_modules(loaded.model, info.num_layers)
    module, weight = down_projection(blocks[layer], info.hidden_size)
    norm = final_norm(loaded.model, info.num_layers) if info.is_decoder else None
    seen: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_pre_hook(lambda _m, args: seen.__setitem__("act", args[0][0].detach()))]
    if norm is not None:
        hooks.append(norm.register_forward_pre_hook(lambda _m, args: seen.__setitem__("resid", args[0][0].detach())))
    kwargs = forward_inputs(loaded, ids)
    kwargs.update(use_cache=False, return_dict=True)
    try:
        with torch.inference_mode():
            loaded.model(**kwargs)
    finally:
        for h in hooks:
            h.remove()
    result = {"key": key, "act": seen["act"].float().cpu(), "resid": seen.get("resid"), "weight": weight,
              "norm": norm}
    extras[EXTRAS_KEY] = result
    return result


def _reader(loaded: LoadedModel, norm: torch.nn.Module | None, resid: torch.Tensor | None) -> torch.Tensor:
    """[V, D] map from a residual write to the logits: the head times the norm's gain over its
    scale at this position (LayerNorm also removes the mean, so the map is centred)."""
    head = output_head(loaded.model)
    if head is None:
        raise LlmvizError("This model does not expose its output head.")
    w = head.weight.float()
    if norm is None:
        return w
    gain = getattr(norm, "weight", None)
    gain = gain.float() if isinstance(gain, torch.Tensor) else torch.ones(w.shape[1])
    eps = float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))
    centred = isinstance(norm, torch.nn.LayerNorm)
    scale = torch.ones(())
    if resid is not None:
        r = resid.float()
        r = r - r.mean() if centred else r
        scale = torch.sqrt((r ** 2).mean() + eps)
    read = w * gain[None] / scale
    return read - read.mean(-1, keepdim=True) if centred else read


def neuron_table(loaded: LoadedModel, ids: np.ndarray, trace_id: int, layer: int, position: int,
                 token: int | str | None, k: int, ctx: TaskContext, extras: dict) -> NeuronTable:
    """The k neurons with the largest |activation| at (position, layer) and their direct
    contributions to the target logit (the top-1 next token unless `token` is given)."""
    from .explain_jobs import labels, resolve_position, token_id_of

    ids = np.asarray(ids, np.int64)
    pos = resolve_position(position, int(ids.size))
    ctx.progress("Neurons", 0.1, f"layer {layer}")
    data = _activations(loaded, ids, layer, extras)
    act = data["act"][pos]
    order = torch.argsort(act.abs(), descending=True)[:max(1, k)]
    contributions = None
    target_id, target_label = -1, ""
    if loaded.info.is_decoder:
        with torch.inference_mode():
            resid = data["resid"][pos] if data["resid"] is not None else None
            reader = _reader(loaded, data["norm"], resid)
            if token in (None, -1, ""):
                norm = data["norm"]
                h = norm(resid[None]) if norm is not None and resid is not None else resid[None]
                target_id = int(torch.argmax(output_head(loaded.model)(h)[0]))
            else:
                target_id = token_id_of(loaded, token)
            direction = data["weight"].float().T[order] @ reader[target_id]  # [k]
            contributions = (act[order] * direction).numpy().astype(np.float32)
        target_label = labels(loaded.tokenizer, [target_id])[0]
    return NeuronTable(trace_id, layer, pos, order.numpy().astype(np.int64), act[order].numpy().astype(np.float32),
                       contributions, target_id, target_label, int(data["act"].shape[1]))


def neuron_detail(loaded: LoadedModel, ids: np.ndarray, trace_id: int, layer: int, neuron: int, k: int,
                  ctx: TaskContext, extras: dict) -> NeuronDetail:
    """One neuron's activation at every token and, for decoders, the k tokens it promotes most
    (logit change per unit of activation, read through the head at the last position's scale)."""
    from .explain_jobs import labels

    ids = np.asarray(ids, np.int64)
    data = _activations(loaded, ids, layer, extras)
    width = int(data["act"].shape[1])
    if not 0 <= neuron < width:
        raise LlmvizError(f"Neuron {neuron} is not in layer {layer} ({width} neurons).")
    ctx.progress("Neuron", 0.5, f"layer {layer}, neuron {neuron}")
    top_ids = np.zeros(0, np.int64)
    top_values = np.zeros(0, np.float32)
    top_labels: tuple[str, ...] = ()
    if loaded.info.is_decoder:
        with torch.inference_mode():
            resid = data["resid"][-1] if data["resid"] is not None else None
            effect = _reader(loaded, data["norm"], resid) @ data["weight"][:, neuron].float()
            values, idx = torch.topk(effect, min(k, effect.numel()))
        top_ids, top_values = idx.numpy().astype(np.int64), values.numpy().astype(np.float32)
        top_labels = labels(loaded.tokenizer, top_ids)
    return NeuronDetail(trace_id, layer, neuron, data["act"][:, neuron].numpy().astype(np.float32), top_ids,
                        top_labels, top_values)
