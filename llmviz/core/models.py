"""Load any model llmviz can show: bundled demo, hub id, local folder or .gguf file.

Loading goes through transformers' own `from_pretrained` (and accelerate's device maps on
CUDA).  Every failure becomes a `ModelLoadError` whose message says what to do; the
caller keeps its previous model until a load succeeds.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import torch
import transformers
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from . import bundled
from .bnb_layout import keep_standard_4bit_layout
from .capture import CAPTURE_IMPL
from .config_check import ConfigFigures, check_config, check_config_file, check_memory
from .errors import Cancelled, LlmvizError, ModelLoadError, RemoteCodeRefused, out_of_memory_message
from .memory import release_freed_memory
from .progress_bridge import transformers_progress
from .specs import DEVICES, DTYPES, ModelInfo, ModelSpec
from .structure import represented_numel
from .tasks import TaskContext

transformers.utils.logging.set_verbosity_error()
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class LoadedModel:
    """A model held by the worker thread (torch objects never leave it)."""

    spec: ModelSpec
    model: torch.nn.Module
    tokenizer: Any
    info: ModelInfo

    @property
    def input_device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device


def collect_garbage() -> None:
    """Free reference cycles now, unless a GUI-thread collector is in charge.

    In the app, automatic GC is disabled and a timer collects on the GUI thread, because a
    collection on the worker thread can destroy Qt objects there and crash (see
    workers.gui_gc); the command line keeps Python's automatic GC and collects here.
    """
    if gc.isenabled():
        gc.collect()


# ---------------------------------------------------------------- where the files are


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check, so an offline machine fails in a second instead of ~25 s of retries."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_source(spec: ModelSpec, ctx: TaskContext) -> tuple[str, dict[str, Any]]:
    """Return (what to pass to from_pretrained, extra kwargs) for the spec's kind."""
    kind = spec.kind
    if kind == "bundled":
        return str(bundled.model_folder(spec.source, ctx)), {}
    if kind == "gguf":
        path = Path(spec.source).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"No such GGUF file: {path}")
        return str(path.parent), {"gguf_file": path.name}
    if kind == "folder":
        path = Path(spec.source).expanduser()
        if not path.is_dir():
            raise ModelLoadError(f"No such folder: {path}")
        if not (path / "config.json").exists():
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return str(path), {"gguf_file": ggufs[0].name}
            raise ModelLoadError(
                f"{path} has no config.json, so it is not a transformers model folder.\n"
                "Choose a folder saved with save_pretrained (config.json, weights, tokenizer) or a .gguf file."
            )
        return str(path), {}
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(spec.source)
    except HFValidationError:
        raise ModelLoadError(
            f"{spec.source!r} is neither a bundled model, an existing folder or .gguf file, nor a valid "
            "Hugging Face model id (like gpt2 or HuggingFaceTB/SmolLM2-360M)."
        ) from None
    if _hub_offline():
        return spec.source, {"local_files_only": True}
    if not _hub_reachable():
        ctx.progress("huggingface.co is unreachable; looking in the local cache", None)
        return spec.source, {"local_files_only": True, "_unreachable": True}
    return spec.source, {}


def explain_hub_error(spec: ModelSpec, exc: Exception, kwargs: dict[str, Any]) -> str:
    from huggingface_hub import constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    cache = constants.HF_HUB_CACHE
    if isinstance(exc, GatedRepoError):
        return f"{spec.source} is gated on the Hugging Face Hub: accept its licence there and log in (hf auth login)."
    if isinstance(exc, RepositoryNotFoundError) or "is not a valid model identifier" in str(exc):
        return f"There is no model called {spec.source!r} on the Hugging Face Hub (check the spelling)."
    if kwargs.get("local_files_only"):
        why = (
            "llmviz is offline (HF_HUB_OFFLINE is set)"
            if not kwargs.get("_unreachable")
            else "huggingface.co cannot be reached from this machine"
        )
        return (
            f"{spec.source!r} is not in the local Hugging Face cache ({cache}) and {why}.\n"
            "Connect to the internet once to download it, or choose a bundled model, a folder or a .gguf file."
        )
    return f"Could not download {spec.source!r} from the Hugging Face Hub: {exc}"


# ---------------------------------------------------------------- choosing how to load


def resolve_device(device: str) -> str:
    if device not in DEVICES:
        raise ModelLoadError(f"Unknown device {device!r}; choose one of {', '.join(DEVICES)}.")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(
            f"CUDA was requested but is not available (torch {torch.__version__}"
            + (", a CPU-only build" if torch.version.cuda is None else ", no usable NVIDIA GPU/driver")
            + "). Choose device 'cpu' or 'auto'."
        )
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    if dtype not in DTYPES:
        raise ModelLoadError(f"Unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}.")
    if dtype == "auto":
        # CPUs run fp32 fastest and exactly; on CUDA keep the checkpoint's own dtype.
        return torch.float32 if device == "cpu" else "auto"
    return getattr(torch, dtype)


def model_class(config: Any) -> tuple[Any, bool, bool]:
    """(auto class, is_decoder, is_encoder_decoder) from the config."""
    if getattr(config, "is_encoder_decoder", False):
        return AutoModelForSeq2SeqLM, False, True
    archs = getattr(config, "architectures", None) or []
    causal_names = transformers.models.auto.modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    masked_names = transformers.models.auto.modeling_auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES
    if any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs):
        return AutoModelForCausalLM, True, False
    if not archs and config.model_type in causal_names and config.model_type not in masked_names:
        return AutoModelForCausalLM, True, False
    return AutoModel, False, False


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    return getter() if getter else config


def _first(config: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def _device_summary(model: torch.nn.Module) -> tuple[str, dict[str, str] | None]:
    device_map = getattr(model, "hf_device_map", None)
    if device_map:
        mapped = {k: str(v if not isinstance(v, int) else f"cuda:{v}") for k, v in device_map.items()}
        devices = sorted(set(mapped.values()))
        return (devices[0] if len(devices) == 1 else ", ".join(devices)), mapped
    try:
        return str(next(model.parameters()).device), None
    except StopIteration:
        return "cpu", None


def _title(spec: ModelSpec, model: torch.nn.Module) -> str:
    if spec.kind == "bundled":
        return bundled.bundled_model(spec.source).title
    if spec.kind in ("gguf", "folder"):
        return Path(spec.source).expanduser().name
    return spec.source


def _quantization_of(model: torch.nn.Module, config: Any) -> str:
    qc = getattr(config, "quantization_config", None)
    if qc is None:
        return "none"
    qc = qc if isinstance(qc, dict) else qc.to_dict()
    if qc.get("load_in_4bit"):
        return str(qc.get("bnb_4bit_quant_type", "4bit")) + ("-dq" if qc.get("bnb_4bit_use_double_quant") else "")
    if qc.get("load_in_8bit"):
        return "int8"
    return str(qc.get("quant_method", "quantized"))


# ---------------------------------------------------------------- the load


def load_model(spec: ModelSpec, ctx: TaskContext | None = None, quantization_config: Any = None,
               check: Callable[[ConfigFigures], None] | None = None) -> LoadedModel:
    """Load `spec` with progress and cancel; raises ModelLoadError with a user-facing message.

    The configuration is sanity-checked (config_check) before the tokenizer and weights;
    `check`, if given, sees its figures then too (the command line checks --layers there),
    and an LlmvizError it raises ends the load.
    """
    ctx = ctx or TaskContext()
    started = time.perf_counter()
    rss_before = psutil.Process().memory_info().rss
    ctx.progress(f"Locating {spec.source}", None)
    try:
        location, extra = resolve_source(spec, ctx)
    except OSError as exc:  # the cache or a folder cannot be read
        raise ModelLoadError(f"Could not open {spec.source}: {exc.strerror or exc}"
                             + (f" ({exc.filename})" if exc.filename else "")) from None
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    hub_kwargs = {k: v for k, v in extra.items() if not k.startswith("_")}
    common = dict(trust_remote_code=bool(spec.trust_remote_code), **hub_kwargs)
    report: list[str] = []
    try:
        with transformers_progress(ctx, "") as bar:
            ctx.progress("Reading the configuration", None)
            if Path(location).is_dir():
                check_config_file(location, spec.source)
            config = AutoConfig.from_pretrained(location, **common)
            figures = check_config(config, spec.source)
            if device == "cpu" and quantization_config is None:
                check_memory(figures, dtype, spec.source)
            if check is not None:
                check(figures)
            model_cls, is_decoder, is_enc_dec = model_class(config)
            ctx.progress("Loading the tokenizer", None)
            tokenizer = AutoTokenizer.from_pretrained(location, **common)
            load_kwargs: dict[str, Any] = dict(common, dtype=dtype, tqdm_class=bar)
            if device == "cuda":
                load_kwargs["device_map"] = "auto"
            if quantization_config is not None:
                load_kwargs["quantization_config"] = quantization_config
                load_kwargs.setdefault("device_map", device)
            with captured_load_report(report):
                model, capture = _load_weights(model_cls, location, load_kwargs, ctx)
    except (Cancelled, LlmvizError):
        raise
    except torch.OutOfMemoryError as exc:
        raise ModelLoadError(f"Out of GPU memory while loading {spec.source}: {exc}".split("\n")[0]
                             + "\nTry device 'cpu', a smaller dtype, or a quantized precision.") from exc
    except MemoryError as exc:
        raise ModelLoadError(f"Out of memory while loading {spec.source}. Close other models or choose a smaller one.") from exc
    except Exception as exc:  # transformers raises many types; each gets a user-facing message
        if "trust_remote_code" in str(exc) and not spec.trust_remote_code:
            raise RemoteCodeRefused(spec.source) from exc
        memory = out_of_memory_message(exc, f"Loading {spec.source}")
        if memory is not None:
            raise ModelLoadError(memory) from exc
        raise ModelLoadError(_explain_load_error(spec, exc, extra, report)) from exc
    finally:
        collect_garbage()
    model.eval()
    keep_standard_4bit_layout(model)
    if device == "cpu" and not getattr(model, "hf_device_map", None) and quantization_config is None:
        model.to("cpu")
    info = _make_info(spec, model, config, is_decoder, is_enc_dec, capture, time.perf_counter() - started, rss_before)
    ctx.progress("Loaded", 1.0)
    return LoadedModel(spec, model, tokenizer, info)


def _load_weights(model_cls: Any, location: str, kwargs: dict[str, Any], ctx: TaskContext) -> tuple[Any, str]:
    """Load with the capture attention if the architecture supports custom attention, else eager."""
    ctx.progress("Loading weights", 0.0)
    try:
        model = model_cls.from_pretrained(location, attn_implementation=CAPTURE_IMPL, **kwargs)
        return model, "qk"
    except ValueError as exc:
        if "attn_implementation" not in str(exc) and "attention" not in str(exc).lower():
            raise
    ctx.progress("Loading weights (eager attention)", 0.0)
    return model_cls.from_pretrained(location, attn_implementation="eager", **kwargs), "weights"


class _KeepRecords(logging.Handler):
    """Keeps the messages of transformers' loading logger; errors still go to its usual handler."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(_ANSI.sub("", record.getMessage()))
        if record.levelno >= logging.ERROR:
            logging.getLogger("transformers").handle(record)


@contextlib.contextmanager
def captured_load_report(into: list[str]) -> Iterator[None]:
    """Collect transformers' weight-loading report (its warnings are silenced here, yet some of its
    errors end with "look at the above report!"), so the message can include it."""
    logger = logging.getLogger("transformers.modeling_utils")
    handler = _KeepRecords(into)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _whole(text: str, max_lines: int = 40) -> str:
    """An exception's whole text (validators put the reason on later lines), without colour codes
    or blank lines, cut at `max_lines`."""
    lines = [line.rstrip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def _explain_load_error(spec: ModelSpec, exc: Exception, extra: dict[str, Any], report: list[str] | None = None) -> str:
    if type(exc).__name__ == "UnpicklingError":  # torch's weights-only loader refused the pickle
        found = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
        return (f"Could not load {spec.source}: its pickled checkpoint holds more than tensors (the "
                f"weights-only loader refused: {found.group(1).strip() if found else 'not tensors'}). "
                "llmviz never unpickles arbitrary objects, since a pickle can run code; use a safetensors copy "
                "of the weights.")
    text = _whole(str(exc))
    if report and "above report" in text:
        text = f"{text}\n{_whole(chr(10).join(report))}"
    if "does not recognize this architecture" in text or "Unrecognized model" in text or "model_type" in text:
        return f"transformers {transformers.__version__} cannot load {spec.source}: {text}"
    if spec.kind == "gguf" or extra.get("gguf_file"):
        return f"Could not read the GGUF file {spec.source} (truncated or damaged?): {text or type(exc).__name__}"
    if spec.kind == "hub" and isinstance(exc, OSError):
        return explain_hub_error(spec, exc, extra)
    if isinstance(exc, OSError) and spec.kind == "folder":
        return f"Could not load the folder {spec.source}: {text or type(exc).__name__}"
    return f"Could not load {spec.source}: {type(exc).__name__}: {text}"


def _make_info(spec, model, config, is_decoder, is_enc_dec, capture, load_s, rss_before) -> ModelInfo:
    text = _text_config(config)
    heads = int(_first(text, "num_attention_heads", "n_head", "num_heads", default=0))
    hidden = int(_first(text, "hidden_size", "n_embd", "d_model", default=0))
    device, device_map = _device_summary(model)
    dtype = str(getattr(model, "dtype", "")).replace("torch.", "")
    quant = _quantization_of(model, getattr(model, "config", config))  # the loaded config knows its quantization
    notes = []
    if spec.kind == "bundled" and spec.source == bundled.SMOLLM2.source:
        notes.append("Weights are Q4_1 GGUF values dequantized to fp32, not the original bf16.")
    if spec.kind == "gguf":
        notes.append("GGUF weights were dequantized by transformers on load.")
    if is_enc_dec:
        notes.append("Encoder-decoder model: traces run the encoder.")
    if capture == "weights":
        notes.append("This architecture does not accept a custom attention function; "
                     "attention comes from eager output_attentions.")
    try:
        footprint = int(model.get_memory_footprint())
    except Exception:  # noqa: BLE001 - any failure: fall back to the process's growth while loading
        footprint = max(0, psutil.Process().memory_info().rss - rss_before)
    return ModelInfo(
        source=spec.source,
        title=_title(spec, model),
        architecture=type(model).__name__,
        model_type=str(getattr(config, "model_type", "")),
        is_decoder=is_decoder,
        is_encoder_decoder=is_enc_dec,
        num_parameters=int(sum(represented_numel(p) for p in model.parameters())),  # 4-bit: weights represented
        num_layers=int(_first(text, "num_hidden_layers", "n_layer", "num_layers", default=0)),
        num_heads=heads,
        num_kv_heads=int(_first(text, "num_key_value_heads", "num_kv_heads", default=heads)),
        hidden_size=hidden,
        head_dim=int(_first(text, "head_dim", default=hidden // heads if heads else 0)),
        vocab_size=int(_first(text, "vocab_size", default=0)),
        max_positions=_first(text, "max_position_embeddings", "n_positions", "max_seq_len"),
        dtype=dtype,
        device=device,
        device_map=device_map,
        quantization=quant,
        capture=capture,
        load_s=load_s,
        memory_bytes=footprint,
        notes=tuple(notes),
        config=config.to_dict(),
    )


def free(loaded: LoadedModel | None) -> None:
    """Release a model's memory (CPU and CUDA) once nothing refers to it."""
    if loaded is None:
        return
    del loaded.model
    collect_garbage()
    release_freed_memory()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
