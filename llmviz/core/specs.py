"""What the user asked to load, and what a loaded model is: small, torch-free records.

These cross the thread boundary (GUI -> worker as requests, worker -> GUI as results),
so they are frozen dataclasses of plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .bundled import is_bundled

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ModelSpec:
    """A model to load: a `bundled:` name, a hub id, a folder with config.json, or a .gguf file."""

    source: str
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    quantization: str = "none"

    @property
    def kind(self) -> str:
        """'bundled', 'gguf', 'folder' or 'hub'."""
        if is_bundled(self.source):
            return "bundled"
        path = Path(self.source).expanduser()
        if self.source.lower().endswith(".gguf"):
            return "gguf"
        if path.is_dir() or self.source.startswith((".", "/", "~")) or "\\" in self.source:
            return "folder"
        return "hub"


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a loaded model, for views and exports (no torch objects)."""

    source: str
    title: str
    architecture: str
    model_type: str
    is_decoder: bool
    is_encoder_decoder: bool
    num_parameters: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    hidden_size: int
    head_dim: int
    vocab_size: int
    max_positions: int | None
    dtype: str
    device: str
    device_map: dict[str, str] | None
    quantization: str
    capture: str
    load_s: float
    memory_bytes: int
    notes: tuple[str, ...] = ()
    config: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def family(self) -> str:
        if self.is_encoder_decoder:
            return "encoder-decoder"
        return "decoder-only" if self.is_decoder else "encoder-only"

    def summary(self) -> str:
        return (
            f"{self.title}: {self.architecture}, {self.num_parameters:,} parameters, "
            f"{self.num_layers} layers x {self.num_heads} heads, {self.dtype} on {self.device}"
        )
