# The two set-up commands (see README.md): `make run` and `make test`; `make lint` for the static checks.
# Each installs into $(VENV) first, but only when the inputs of the install changed since
# the last one (a stamp file), so on a set-up checkout they start at once.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
INSTALL_INPUTS := pyproject.toml constraints.txt requirements-models.txt scripts/install.sh
STAMP := $(VENV)/.llmviz-installed
PACKAGE_STAMP := $(VENV)/.llmviz-package-installed

.PHONY: install run test lint bench package package-test upgrade clean

$(STAMP): $(INSTALL_INPUTS)
	VENV=$(VENV) scripts/install.sh
	touch $@

$(PACKAGE_STAMP): $(STAMP)
	VENV=$(VENV) LLMVIZ_EXTRAS=test,package scripts/install.sh
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(PY) -m llmviz $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

# The static checks (ruff's rule sets are chosen in pyproject.toml); .ci/run runs them before the tests.
# No type checker is configured, so a `type: ignore` comment would only mislead: the grep fails on one.
lint: $(STAMP)
	$(PY) -m ruff check llmviz tests bench scripts
	@if grep -rn "type: ignore" llmviz tests bench scripts; then \
		echo "lint: no type checker is configured, so the code carries no 'type: ignore' comments (issue #17): remove the ones above" >&2; exit 1; fi

bench: $(STAMP)
	for b in startup attention tokens structure timeline_env quantization gil_holds; do $(PY) bench/$$b.py || exit 1; done

package: $(PACKAGE_STAMP)
	$(PY) scripts/package.py

package-test: package
	LLMVIZ_PACKAGED_APP=dist/llmviz/llmviz $(PY) -m pytest -q tests/test_packaging.py
	$(PY) bench/packaged.py

# Newest releases within pyproject.toml's ranges, in a separate venv: the tests and the
# package build run there, and constraints.txt is rewritten only when both pass.
upgrade:
	scripts/upgrade.sh

clean:
	rm -rf build dist .pytest_cache
