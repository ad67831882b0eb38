#!/usr/bin/env bash
# Print the constraints file for the environment VENV (default .venv): every installed
# distribution at its exact version, except llmviz itself and torch with the packages only a
# CUDA build of torch brings (scripts/install.sh picks the torch build per machine).
set -euo pipefail
VENV=${1:-.venv}
echo "# The tested set: exact versions of everything llmviz installs (written by scripts/freeze_constraints.sh"
echo "# from an environment that passed make test and make package-test; make upgrade rewrites it)."
echo "# torch is not pinned here: scripts/install.sh chooses its CPU or CUDA build."
"$VENV/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check \
    | grep -viE '^(torch|nvidia-[a-z0-9-]+|triton|cuda-[a-z0-9-]+)==' | grep -v '^#' | LC_ALL=C sort -f
