# The two set-up commands (see README.md): `make run` and `make test`.
PY := .venv/bin/python
ARGS ?=

.PHONY: install run test bench package clean

install:
	scripts/install.sh

run: install
	$(PY) -m llmviz $(ARGS)

test: install
	$(PY) -m pytest -q $(ARGS)

bench: install
	for b in bench/*.py; do $(PY) $$b || exit 1; done

package: install
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[package]"
	$(PY) scripts/package.py

clean:
	rm -rf build dist .pytest_cache
