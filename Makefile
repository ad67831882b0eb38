# The two set-up commands (see README.md): `make run` and `make test`.
PY := .venv/bin/python
ARGS ?=

.PHONY: install run test bench package package-test clean

install:
	scripts/install.sh

run: install
	$(PY) -m llmviz $(ARGS)

test: install
	$(PY) -m pytest -q $(ARGS)

bench: install
	for b in startup attention tokens structure timeline_env quantization gil_holds; do $(PY) bench/$$b.py || exit 1; done

package: install
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[package]"
	$(PY) scripts/package.py

package-test: package
	LLMVIZ_PACKAGED_APP=dist/llmviz/llmviz $(PY) -m pytest -q tests/test_packaging.py
	$(PY) bench/packaged.py

clean:
	rm -rf build dist .pytest_cache
