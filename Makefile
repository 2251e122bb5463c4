# Set-up and entry points. `make demo`, `make test` and `make lint` work on a fresh clone.
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := demo_output
CRAB_DIR := crab_output
STAMP := $(VENV)/.installed
LINT_STAMP := $(VENV)/.lint-installed

# The interpreter that creates the venv: Python >= 3.12, newest first. Where
# python3.13/python3.12 are pyenv shims that refuse to run (the version is installed
# but not selected), PYENV_VERSION selects it. `make PYTHON=/path/to/python3.12 ...`
# overrides the search.
PYTHON_CANDIDATES := python3.13 "env PYENV_VERSION=3.13 python3.13" \
                     python3.12 "env PYENV_VERSION=3.12 python3.12" python3
find_python = $(shell for py in $(PYTHON_CANDIDATES); do \
    if $$py -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then \
        echo "$$py"; break; \
    fi; done)
ifeq ($(origin PYTHON),undefined)
# searched once, and only by the targets that need it (not by `make clean`)
PYTHON = $(eval PYTHON := $(find_python))$(or $(PYTHON),$(error No Python >= 3.12 \
found (tried python3.13, python3.12, the same with PYENV_VERSION, python3). Install \
Python 3.12 or newer, e.g. `pyenv install 3.12` or your distribution's python3.12 \
package, or run `make PYTHON=/path/to/python3.12 ...`))
endif

.PHONY: demo test lint benchmark crab clean python

$(STAMP): pyproject.toml
	@if [ -x $(BIN)/python ] && $(BIN)/python -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then \
	    echo "reusing $(VENV) ($$($(BIN)/python -V))"; \
	else \
	    rm -rf $(VENV); \
	    echo "creating $(VENV) with Python $$($(PYTHON) -c 'import platform; print(platform.python_version())') ($(PYTHON)) ..."; \
	    $(PYTHON) -m venv $(VENV); \
	fi
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "installing ctapipe_sst1m and dependencies (a few minutes on a fresh machine) ..."
	$(BIN)/python -m pip install --progress-bar off -e '.[tests]'
	@touch $(STAMP)

# ruff, codespell (and pre-commit) come with the `dev` extra
$(LINT_STAMP): $(STAMP)
	@echo "installing the lint tools (ruff, codespell) ..."
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]'
	@touch $(LINT_STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(LINT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/codespell

demo: $(STAMP)
	$(BIN)/python examples/demo.py --output-dir $(DEMO_DIR)

benchmark: $(STAMP)
	$(BIN)/python benchmarks/r0_dl1.py

# a simulated Crab from raw data to gammapy and back (docs/end-to-end.md, < 1 h on 2 cores)
crab: $(STAMP)
	$(BIN)/python examples/crab_end_to_end.py --output-dir $(CRAB_DIR)

# prints the interpreter that would create the venv
python:
	@echo "$(PYTHON) -> $$($(PYTHON) -V)"

clean:
	rm -rf $(VENV) $(DEMO_DIR) $(CRAB_DIR) *.egg-info build ctapipe_sst1m/_version.py
