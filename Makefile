# The two commands of the README: `make run` and `make test`. Both create the virtual
# environment (.venv) on first use, with the exact versions of requirements/lock.txt, and
# install the project into it (again whenever pyproject.toml or the lock changes).
#
#   make lock         refresh the locks from pyproject.toml's ranges (needs the network)
#   make test-latest  run the suite against the newest versions the ranges allow (.venv-latest)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements/lock.txt
INTEROP_VENV := .venv-interop
INTEROP_LOCK := requirements/interop.txt
INTEROP_STAMP := $(INTEROP_VENV)/.installed
LATEST_VENV := .venv-latest
UV_VERSION := 0.13.9
TOOLS_VENV := .venv-tools
UV := $(TOOLS_VENV)/bin/uv
EXTRAS := gui,study,test
RUN_DIR ?= runs/sample

.PHONY: run run-headless test test-latest lint lock clean-venv

define check_python
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required, found " + sys.version.split()[0])'
endef

# uv (pinned) installs the locks: the exact versions and hashes, nothing else (`uv pip sync`),
# measured 14 s for the main lock where pip took minutes (pip compiles every module first).
$(UV):
	$(check_python)
	rm -rf $(TOOLS_VENV)
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)'

$(STAMP): pyproject.toml $(LOCK) | $(UV)
	$(check_python)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(UV) pip sync --quiet --require-hashes --python $(PY) $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	@touch $(STAMP)

$(INTEROP_STAMP): $(INTEROP_LOCK) | $(UV)
	$(check_python)
	rm -rf $(INTEROP_VENV)
	$(PYTHON) -m venv $(INTEROP_VENV)
	$(UV) pip sync --quiet --require-hashes --python $(INTEROP_VENV)/bin/python $(INTEROP_LOCK)
	@touch $(INTEROP_STAMP)

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
	$(PY) -m ruff format --check ptycho_engine ptycho_gui tests benchmarks
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

# The suite runs in TEST_WORKERS processes (pytest-xdist), each test file in one of them (their
# module fixtures are built once): measured on 2 cores, 765 s instead of 1,173 s in one
# process. `make test TEST_WORKERS=0` runs it in one process. A worker that crashes, or that
# faulthandler ends because a test hung (pyproject.toml), is replaced at most twice: the run
# then stops, and its failures name the tests, instead of hanging the whole run.
TEST_WORKERS ?= 2

test: lint $(INTEROP_STAMP)
	PTYCHODUS_PYTHON=$(abspath $(INTEROP_VENV))/bin/python $(PY) -m pytest -n $(TEST_WORKERS) \
		--dist loadfile --max-worker-restart 2

# The suite against the newest releases that pyproject.toml's ranges allow (not the lock):
# tells whether a lock refresh is safe. CI runs `make test`, on the lock.
test-latest:
	$(check_python)
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade -e '.[$(EXTRAS)]'
	@touch $(LATEST_VENV)/.installed
	$(MAKE) test VENV=$(LATEST_VENV)

# Refresh both locks (exact versions and hashes) from pyproject.toml's ranges and the .in
# files, for every platform, Python 3.11 and newer. Commit the result after `make test` passes.
lock:
	$(check_python)
	rm -rf $(TOOLS_VENV)
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)'
	$(UV) pip compile pyproject.toml requirements/build.in --extra gui \
		--extra study --extra test --universal --python-version 3.11 --generate-hashes \
		--quiet -o $(LOCK)
	$(UV) pip compile requirements/interop.in --universal --python-version 3.11 \
		--generate-hashes --quiet -o $(INTEROP_LOCK)

clean-venv:
	rm -rf $(VENV) $(INTEROP_VENV) $(LATEST_VENV) .venv-tools

# Our iterative solvers (rpie, lsqml) against pty-chi's LSQML and PtyLab's ePIE, side by side in
# one run (benchmarks/solvers.py), in a benchmark-only environment built from its own lock
# (requirements/bench.in, bench.txt): pty-chi and PtyLab are no dependencies of the project,
# which is installed into it without its own (--no-deps; the solvers need no TensorFlow). The
# environment is about 6 GB (PyPI's torch is a CUDA build, run on the CPU) and takes about two
# minutes to build where the wheels lie on disk. `make bench-solvers ARGS="--threads 2,1"`.
BENCH_VENV := .venv-bench
BENCH_LOCK := requirements/bench.txt

$(BENCH_VENV)/.installed: $(BENCH_LOCK)
	$(check_python)
	rm -rf $(BENCH_VENV)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps --require-hashes -r $(BENCH_LOCK)
	$(BENCH_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

.PHONY: bench-solvers
bench-solvers: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/solvers.py $(ARGS)
