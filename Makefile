# minescan — every target sets up what it needs itself (a local virtualenv in .venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MINESCAN := $(VENV)/bin/minescan
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= cpu,dev
OUT ?= demo-out
BENCH_OUT ?= bench-out
BENCH_SIZE ?= 9216

.PHONY: install test test-slow demo bench demo-models clean help

help:
	@echo "make demo        run the whole pipeline on a synthetic area (no cloud)"
	@echo "make test        run the fast test suite"
	@echo "make test-slow   run the slow tests too"
	@echo "make bench       benchmark a $(BENCH_SIZE)x$(BENCH_SIZE)x12 scene scan; writes $(BENCH_OUT)/"
	@echo "make demo-models retrain the bundled demo models from synthetic chips"

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m "slow or not slow"

demo: install
	$(MINESCAN) demo --out $(OUT)

bench: install
	$(MINESCAN) bench --size $(BENCH_SIZE) --out $(BENCH_OUT)

demo-models: install
	$(MINESCAN) models train-demo --out job/minescan/demo_models --overwrite

clean:
	rm -rf $(OUT) $(BENCH_OUT) build dist job/*.egg-info
