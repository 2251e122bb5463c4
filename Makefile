# Set-up and entry points. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := demo_output
STAMP := $(VENV)/.installed

.PHONY: demo test benchmark clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[tests]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python examples/demo.py --output-dir $(DEMO_DIR)

benchmark: $(STAMP)
	$(BIN)/python benchmarks/r0_dl1.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) *.egg-info
