"""What the device and the loaded model offer the quantization dial: which layers a precision
replaces, how much memory it needs, and whether its dtype or bitsandbytes kernel runs here
(each checked once per device by running a tiny layer).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers.pytorch_utils import Conv1D
from transformers.quantizers.base import get_keys_to_not_convert
from transformers.quantizers.quantizers_utils import should_convert_module

from . import memory
from .bnb_layout import keep_standard_4bit_layout
from .models import LoadedModel
from .quantization_results import DTYPE_KEYS, Precision
from .specs import ModelSpec


def convertible_linears(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The layers bitsandbytes replaces: plain nn.Linear / Conv1D outside transformers' skip list."""
    try:
        skip = get_keys_to_not_convert(model)
    except Exception:  # noqa: BLE001 - non-transformers modules: skip nothing
        skip = []
    return [(name, m) for name, m in model.named_modules()
            if (type(m) is torch.nn.Linear or isinstance(m, Conv1D)) and should_convert_module(name, skip)]


def weight_count(modules: list[tuple[str, torch.nn.Module]]) -> int:
    """Weights in `modules`."""
    return sum(m.weight.numel() for _, m in modules)


def estimate_bytes(p: Precision, num_parameters: int, quantizable: int, reference_dtype_bytes: int,
                   rows: int = 0) -> int:
    """Weight memory a variant will need, from the parameter counts (for the memory budget)."""
    rest = num_parameters - quantizable
    if p.kind == "dtype":
        return num_parameters * (4 if p.dtype == "float32" else 2)
    if p.kind == "int8":
        return quantizable + 4 * rows + rest * reference_dtype_bytes
    if p.kind == "4bit":
        scales = quantizable // 64 * (1 if p.double_quant else 4)
        return quantizable // 2 + scales + rest * reference_dtype_bytes
    return num_parameters * reference_dtype_bytes  # simulated: stored in the load dtype


def _cpu_capabilities() -> dict[str, Any]:
    """torch's report of the CPU's instruction sets (empty where torch cannot tell)."""
    getter = getattr(torch.cpu, "get_capabilities", None)
    try:
        return dict(getter()) if getter else {}
    except Exception:  # noqa: BLE001 - informational only
        return {}


@functools.cache
def probe_dtype(dtype: str, device: str) -> str:
    """Run the operations a transformer needs in `dtype` on `device`; '' when they all work."""
    try:
        dt = getattr(torch, dtype)
        x = torch.randn(1, 2, 8, 16, device=device).to(dt)
        w = torch.randn(32, 16, device=device).to(dt)
        y = F.linear(x, w)
        F.layer_norm(y, (32,))
        F.silu(y), F.gelu(y), torch.softmax(y, -1), y.pow(2).mean(-1).rsqrt()
        F.embedding(torch.tensor([0, 1], device=device), w)
        F.scaled_dot_product_attention(x, x, x, is_causal=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the mode cannot run here
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return ""


@functools.cache
def probe_bitsandbytes(kind: str, quant_type: str, double_quant: bool, device: str, compute: str) -> str:
    """Quantize and run a tiny bitsandbytes layer on `device`; '' when it works, else why not."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install bitsandbytes)."
    if importlib.util.find_spec("accelerate") is None:
        return "transformers needs accelerate to load bitsandbytes models (pip install accelerate)."
    import bitsandbytes as bnb
    version = getattr(bnb, "__version__", "?")
    supported = getattr(bnb, "supported_torch_devices", None)
    if supported is not None and device not in supported:
        return f"bitsandbytes {version} has no backend for {device} (it supports {', '.join(sorted(supported))})."
    try:
        weight = torch.randn(64, 64)
        if kind == "int8":
            layer = bnb.nn.Linear8bitLt(64, 64, bias=False, has_fp16_weights=False)
            layer.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
        else:
            layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=getattr(torch, compute),
                                      quant_type=quant_type, compress_statistics=double_quant)
            layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type=quant_type,
                                             compress_statistics=double_quant)
        layer = layer.to(device)
        keep_standard_4bit_layout(layer)  # the layout the dial's variants use
        with torch.inference_mode():
            out = layer(torch.randn(3, 64, device=device, dtype=getattr(torch, compute)))
        if not torch.isfinite(out).all():
            return f"bitsandbytes {version} returned non-finite values for a test layer on {device}."
    except Exception as exc:  # noqa: BLE001 - the reason is shown on the dial
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"bitsandbytes {version} cannot run this on {device}: {first}"
    return ""


def compute_dtype(loaded: LoadedModel) -> str:
    """bitsandbytes computes in the reference's float dtype, so only the weights differ."""
    dtype = loaded.info.dtype
    return dtype if dtype in DTYPE_KEYS else "float32"


def device_type(loaded: LoadedModel) -> str:
    """'cpu' or 'cuda': where the reference runs, so where its variants load."""
    return loaded.input_device.type


def device_note(loaded: LoadedModel) -> str:
    """Where variants load, and why not on CUDA when they cannot."""
    device = device_type(loaded)
    if device == "cuda":
        name = torch.cuda.get_device_name(loaded.input_device)
        return f"Variants load on CUDA ({name}), beside the reference (device_map='auto' for big models)."
    if torch.cuda.is_available():
        return ("CUDA is available but the reference is on the CPU, so variants load on the CPU too. "
                "Load the model with device 'cuda' to compare on the GPU.")
    why = "this torch is a CPU-only build" if torch.version.cuda is None else "no usable NVIDIA GPU/driver"
    return f"No CUDA here ({why}): variants load on the CPU. On a GPU the same dial loads them on CUDA."


def free_bytes(loaded: LoadedModel) -> int:
    """Memory free on the reference's device."""
    return memory.free_bytes(loaded.input_device)



def why_not(p: Precision, ref: LoadedModel, ref_key: str | None, device: str, quantizable: int) -> tuple[str, str]:
    """(reason it cannot run, note when it can) for one precision."""
    info = ref.info
    if p.key == ref_key:
        return "", "This is the loaded model (the reference)."
    if info.quantization != "none":
        return (f"The loaded model is already quantized ({info.quantization}); its original weights are not "
                f"available, and transformers would silently keep the checkpoint's quantization instead of "
                f"loading {p.label}."), ""
    if p.kind == "dtype":
        problem = probe_dtype(p.dtype, device)
        if problem:
            return f"{p.label} does not run on this {device}: {problem}", ""
        note = _dtype_note(p, device)
    elif p.uses_bitsandbytes:
        if source_is_gguf(ref.spec):
            return ("transformers cannot combine bitsandbytes quantization with loading from a GGUF file "
                    "(\"You cannot combine Quantization and loading a model from a GGUF file\"). Save the model "
                    "with save_pretrained and load that folder to compare bitsandbytes precisions."), ""
        if not quantizable:
            return f"{info.architecture} has no nn.Linear/Conv1D layers that bitsandbytes can replace.", ""
        problem = probe_bitsandbytes(p.kind, p.quant_type, p.double_quant, device, compute_dtype(ref))
        if problem:
            return problem, ""
        note = (f"Computes in {compute_dtype(ref)}; the embeddings and the output layer stay unquantized "
                "(transformers' default).")
        if p.kind == "int8":
            note += " bitsandbytes casts the activations to float16 for the int8 matrix products."
    else:
        if not quantizable:
            return f"{info.architecture} has no nn.Linear/Conv1D layers to round.", ""
        note = "Simulated: stored in the load dtype, so memory is not reduced."
    return "", note


def source_is_gguf(spec: ModelSpec) -> bool:
    """Whether transformers loads `spec` from a .gguf file (a .gguf path, or a folder holding only one)."""
    if spec.kind == "gguf":
        return True
    folder = Path(spec.source).expanduser()
    return spec.kind == "folder" and not (folder / "config.json").exists() and any(folder.glob("*.gguf"))


def _dtype_note(p: Precision, device: str) -> str:
    """A warning when the CPU emulates `p` (no native bf16/fp16 instructions), else ''."""
    if device != "cpu" or p.dtype == "float32":
        return ""
    caps = _cpu_capabilities()
    native = {"bfloat16": ("avx512_bf16", "amx_bf16"), "float16": ("avx512_fp16", "amx_fp16")}[p.dtype]
    if caps and not any(caps.get(c) for c in native):
        return (f"This CPU has no native {p.label} instructions ({' / '.join(c.upper() for c in native)}): torch "
                "emulates it, so it is slower than FP32.")
    return ""

