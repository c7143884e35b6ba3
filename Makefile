# The two commands of the README: `make run` and `make test`. Both create the virtual
# environment (.venv) and install the project into it on first use (and again whenever
# pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/sample

.PHONY: run run-headless test lint clean-venv

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[gui,study,test]'
	@touch $(STAMP)

# The desktop app on the bundled sample data (or FILE=path), e.g. `make run FILE=scan.cxi`.
run: $(STAMP)
	$(VENV)/bin/ptycho-gui $(FILE) $(ARGS)

# The same reconstruction headless, from the command line.
run-headless: $(STAMP)
	@mkdir -p $(RUN_DIR)
	@test -f $(RUN_DIR)/data.npz || $(VENV)/bin/ptycho-engine simulate --out $(RUN_DIR)/data.npz --N 64 --positions 400 --photons 1e6
	$(VENV)/bin/ptycho-engine train $(RUN_DIR)/data.npz --N 64 --gridsize 2 --epochs 10 --out $(RUN_DIR)/run

lint: $(STAMP)
	$(PY) -m ruff check ptycho_engine ptycho_gui tests benchmarks
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest

clean-venv:
	rm -rf $(VENV)
