# A fresh machine needs only Python 3.11: `make demo` and `make test` set everything up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_DIR ?= runs/demo

.PHONY: setup browser-deps demo test test-all emulator bench clean

setup: $(STAMP)

# torch first and pinned: its CPU wheel lies on local disk; an unpinned torch pulls a CUDA build.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "dipn needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'torch==2.13.0'
	$(BIN)/pip install --quiet -e '.[all]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: setup
	$(BIN)/dipn demo --out $(DEMO_DIR)

# playwright-core for the dashboard's headless-Chromium test (tests/browser, pinned by its lockfile).
browser-deps:
	@if command -v npm >/dev/null; then npm ci --prefix tests/browser --no-audit --no-fund --silent; \
	else echo "npm not found: tests/test_dashboard.py's browser test will skip"; fi

test: setup browser-deps
	$(BIN)/python -m pytest -q

test-all: setup browser-deps
	$(BIN)/python -m pytest -q -m ""

# An emulated ARM64 phone (QEMU user mode, Debian arm64 userlands, instruction counter) under
# .cache/emulator; needs root for apt-get. Says why and exits 0 where it cannot be built.
emulator: setup
	$(BIN)/python benchmarks/emulator/build.py

# The device and endpoint benchmarks of docs/benchmarks.md on the demo's model, then RESULTS.md.
bench: setup emulator
	test -f $(DEMO_DIR)/bundle/manifest.json || $(BIN)/dipn demo --out $(DEMO_DIR)
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/uplink_cost.py
	$(BIN)/python benchmarks/emulator/bench.py
	$(BIN)/python benchmarks/endpoint_load.py --workers 2 --seconds 15 --rate 2000 --crash
	$(BIN)/python benchmarks/endpoint_load.py --postgres --workers 2 --seconds 15 --rate 2000 --crash \
		--out benchmarks/results/endpoint_load_postgres.json
	$(BIN)/python benchmarks/render_results.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis .cache
