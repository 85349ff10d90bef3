# A fresh machine needs only Python 3.11: `make demo` and `make test` set everything up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_DIR ?= runs/demo

.PHONY: setup demo test test-all clean

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

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ""

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
