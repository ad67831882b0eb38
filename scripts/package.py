"""Build the one-folder desktop app: `make package` (or `python scripts/package.py`).

1. Prepares build/bundled-models: the SmolLM2 weights already converted from the GGUF
   (so the packaged app's first start does not spend ~25 s converting), MiniLM and the
   GPT-2 tokenizer, with a manifest of file sizes the app checks at start.
2. Runs PyInstaller with llmviz.spec into dist/llmviz/.
3. Prints the build time, the size and the largest parts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL_FILES = {
    "smollm2": ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                "tokenizer_config.json", "chat_template.jinja"),
    "minilm": ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
               "special_tokens_map.json"),
    "gpt2-tokenizer": ("vocab.json", "merges.txt", "tokenizer_config.json"),
}


def prepare_models(out: Path) -> None:
    from llmviz.core import bundled

    sources = {
        "smollm2": bundled.model_folder("bundled:smollm2"),
        "minilm": bundled.model_folder("bundled:minilm"),
        "gpt2-tokenizer": bundled.gpt2_tokenizer_folder(),
    }
    if out.exists():
        shutil.rmtree(out)
    manifest: dict[str, dict[str, int]] = {}
    for name, src in sources.items():
        (out / name).mkdir(parents=True)
        manifest[name] = {}
        for rel in MODEL_FILES[name]:
            if not (src / rel).exists():
                continue
            shutil.copy2(src / rel, out / name / rel)
            manifest[name][rel] = (out / name / rel).stat().st_size
    (out / bundled.PREBUILT_MANIFEST).write_text(json.dumps(manifest, indent=1))


def tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def largest_parts(app: Path, count: int = 12) -> list[tuple[str, int]]:
    internal = app / "_internal"
    parts = [(str(p.relative_to(app)), tree_size(p) if p.is_dir() else p.stat().st_size) for p in internal.iterdir()]
    return sorted(parts, key=lambda x: -x[1])[:count]


def main() -> int:
    started = time.perf_counter()
    models = ROOT / "build" / "bundled-models"
    print("llmviz package: preparing the bundled models …", flush=True)
    prepare_models(models)
    env = {**os.environ, "LLMVIZ_PACKAGE_MODELS": str(models)}
    cmd = [sys.executable, "-m", "PyInstaller", str(ROOT / "llmviz.spec"), "--noconfirm", "--log-level", "WARN",
           "--distpath", str(ROOT / "dist"), "--workpath", str(ROOT / "build" / "pyinstaller")]
    print("llmviz package: " + " ".join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if result.returncode != 0:
        return result.returncode
    app = ROOT / "dist" / "llmviz"
    elapsed = time.perf_counter() - started
    size = tree_size(app)
    print(f"\nbuilt {app / 'llmviz'} in {elapsed / 60:.1f} min; {size / 2**30:.2f} GB unpacked")
    print("largest parts:")
    for name, n in largest_parts(app):
        print(f"  {n / 2**20:9.1f} MB  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
