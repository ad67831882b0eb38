#!/usr/bin/env bash
# make upgrade: try the newest releases within pyproject.toml's ranges.
# Installs them into a fresh .venv-upgrade (your .venv is not touched), runs the test suite
# and the packaged app's tests there, and only when both pass rewrites constraints.txt from
# that environment. Then `make install` moves .venv to the new set.
set -euo pipefail
cd "$(dirname "$0")/.."
UP=.venv-upgrade
rm -rf "$UP"
VENV=$UP LLMVIZ_CONSTRAINTS=none LLMVIZ_EXTRAS=test,package scripts/install.sh
echo "llmviz upgrade: resolved"
"$UP/bin/python" -m pip list --format=freeze --disable-pip-version-check \
    | grep -iE '^(transformers|accelerate|huggingface.hub|kernels|tokenizers|safetensors|bitsandbytes|PySide6.Essentials|pyqtgraph|numpy|pandas|pyinstaller)==' \
    | sed 's/^/  /'
touch "$UP/.llmviz-installed" "$UP/.llmviz-package-installed"
if ! make VENV="$UP" test package-test; then
    echo "llmviz upgrade: the newest versions FAILED the tests or the package build above;" \
         "constraints.txt is unchanged. The packaged test names the package that broke." >&2
    exit 1
fi
scripts/freeze_constraints.sh "$UP" > constraints.txt.tmp
mv constraints.txt.tmp constraints.txt
echo "llmviz upgrade: passed; constraints.txt now pins this set (git diff constraints.txt)." \
     "Run make install to move .venv to it."
