# HW6 course kit. Two commands do everything on a fresh machine:
#   make demo   release hw6, autograde the bundled sample submissions, feedback, grades CSV, report
#   make test   the whole test suite (what CI runs)
# Both create and fill the virtual environment .venv on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pytest workers: each xdist_group (and each module with a module-scoped fixture) runs on one worker, longest
# first; the rest spread out (tests/support/scheduling.py).
# The real Gradescope image build (about 20-30 min, the package registries) runs on demand:
# `make test-gradescope-build`.
PYTEST_ARGS ?= -n 2 --dist loadgroup -m "not gradescope_build"

.PHONY: install demo test test-fast test-gradescope-build system-deps bench release clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# torch first and pinned: an unpinned torch (or one pulled in by a dependency) is a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	@# rfc3987-syntax (an optional format checker of jsonschema, pulled in by jupyter-events) builds 38 Lark
	@# parsers on import: 2.5 CPU-s in every process that imports nbformat. Nothing here checks that format.
	$(BIN)/pip uninstall --quiet --yes rfc3987-syntax
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/coursekit fetch-data
	$(BIN)/coursekit demo

# Tests that need heavy parts start them themselves: JupyterLab in Debian's Chromium (driven by
# Playwright, no browser download) and a PostgreSQL server on loopback. Install them when missing.
system-deps:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "installing $$missing (apt)"; apt-get update -qq && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    else echo "missing $$missing: the browser/PostgreSQL tests will be skipped"; fi; fi

test: $(STAMP) system-deps
	$(BIN)/coursekit fetch-data
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything except the notebook pipeline and the browser: a quick check while editing.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

# setup.sh of the Gradescope zip, run for real in a debootstrapped root under cgroup limits (root, slow).
test-gradescope-build: $(STAMP)
	$(BIN)/coursekit fetch-data
	$(BIN)/python -m pytest -m gradescope_build -s

release: $(STAMP)
	$(BIN)/coursekit release

bench: $(STAMP)
	for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf submitted autograded/* feedback reports gradebook.db .coursekit
	touch autograded/.gitkeep
