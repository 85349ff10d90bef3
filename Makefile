# A fresh machine needs only Python 3.11: `make demo` and `make test` set everything up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_DIR ?= runs/demo
WEB    := mobile_demo/web
WEB_STAMP := $(WEB)/node_modules/.installed-$(shell cat $(WEB)/package-lock.json | cksum | cut -d' ' -f1)
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/test $(WEB)/e2e -name '*.ts') $(WEB)/tsconfig.json

.PHONY: setup web demo test test-all emulator bench clean

setup: $(STAMP) web

# The TypeScript port and its live page (mobile_demo/web): npm packages from the lockfile, then tsc.
# onnxruntime-node's install script would fetch CUDA binaries from outside the npm registry; its CPU
# build ships inside the package, so the script is told to skip. Without Node.js the web tests skip.
web: $(WEB)/dist/.built

$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(WEB) && rm -f node_modules/.installed-* && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund \
		&& touch $(notdir $@) && mv $(notdir $@) node_modules/; \
	else echo "npm is not installed: the TypeScript port and browser tests will be skipped" >&2; fi

$(WEB)/dist/.built: $(WEB_STAMP) $(WEB_SOURCES)
	@if [ -d $(WEB)/node_modules/typescript ]; then \
		cd $(WEB) && node node_modules/typescript/bin/tsc -p tsconfig.json && touch dist/.built; fi

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

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ""

# An emulated ARM64 phone (QEMU user mode, Debian arm64 userlands, instruction counter) under
# .cache/emulator; needs root for apt-get. Says why and exits 0 where it cannot be built.
emulator: setup
	$(BIN)/python -m benchmarks.emulator.build

# The device and endpoint benchmarks of docs/benchmarks.md on the demo's model, then RESULTS.md.
bench: setup emulator
	test -f $(DEMO_DIR)/bundle/manifest.json || $(BIN)/dipn demo --out $(DEMO_DIR)
	$(BIN)/python -m benchmarks.latency
	$(BIN)/python -m benchmarks.browser_latency
	$(BIN)/python -m benchmarks.uplink_cost
	$(BIN)/python -m benchmarks.emulator.bench
	$(BIN)/python -m benchmarks.endpoint_load --workers 2 --seconds 15 --rate 2000 --crash
	$(BIN)/python -m benchmarks.endpoint_load --postgres --workers 2 --seconds 15 --rate 2000 --crash \
		--out benchmarks/results/endpoint_load_postgres.json
	$(BIN)/python -m benchmarks.render_results

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis .cache $(WEB)/node_modules $(WEB)/dist
