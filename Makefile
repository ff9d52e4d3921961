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
MAP_SITES ?= 20000
SHARED ?= ../shared
SERIES_OUT ?= demo-series
# the real Sentinel-2 RGB tailings scenes (img_NNN.tif + mask_NNN.tif), never copied into the repo
TAILINGS ?= $(SHARED)/data/tailings_seg_dev
SERIES_REAL_OUT ?= series-real-out
BENCH_SERIES_OUT ?= bench-series
BENCH_SERIES_SIZE ?= 10000

IMAGE ?= minescan
TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
CONTAINER ?= docker
PLATFORM ?= linux/amd64
# The Dockerfile's base image; release builds take it by digest (NAME@sha256:...).
BASE_IMAGE ?=
OVERLAY ?= cpu

.PHONY: install test test-slow demo demo-series series-real bench bench-gpu bench-series bench-reduce bench-map demo-models vendor clean help image image-local push manifests deploy

help:
	@echo "make demo        run the whole pipeline on a synthetic area (no cloud)"
	@echo "make demo-series the MapBiomas time series on synthetic Landsat regions, scored per year"
	@echo "make series-real train + 4-fold-evaluate the U-Net on the real RGB tailings scenes (TAILINGS=...)"
	@echo "make test        run the fast test suite"
	@echo "make test-slow   run the slow tests too"
	@echo "make bench       benchmark a $(BENCH_SIZE)x$(BENCH_SIZE)x12 scene scan; writes $(BENCH_OUT)/"
	@echo "make bench-map   measure the offline map with $(MAP_SITES) sites in headless Chromium"
	@echo "make bench-gpu   the same scan on a GPU (float32 and mixed precision); GPU node only"
	@echo "make bench-series filter a 20x$(BENCH_SERIES_SIZE)^2 synthetic class cube; writes $(BENCH_SERIES_OUT)/"
	@echo "make bench-reduce benchmark the reduce of 1,000 synthetic shards x 2,000 detections"
	@echo "make demo-models retrain the bundled demo models from synthetic chips"
	@echo "make vendor      refresh the map's inlined Leaflet (npm) and country outlines (SHARED=../shared)"
	@echo "make image       build the cpu and gpu images with \$$(CONTAINER) (docker by default)"
	@echo "make image-local build and smoke-test the cpu image here (podman, debootstrap base; root)"
	@echo "make push        push both images to \$$(IMAGE)"
	@echo "make release     build, push and pin both images by digest into k8s/releases/\$$(TAG)/"
	@echo "make lock        re-resolve requirements/*.txt (the image's pinned, hashed dependencies)"
	@echo "make manifests   render every kustomize overlay into build/manifests/"
	@echo "make deploy      apply an overlay (OVERLAY=cpu|gpu|...; see docs/CLUSTER.md)"

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

demo-series: install
	$(MINESCAN) series demo --out $(SERIES_OUT) --overwrite

# A reproducible U-Net on the real RGB scenes: 4-fold cross-validation over whole scenes
# (U-Net and spectral baseline on every held-out scene), then the model on all 12 scenes;
# then both scored on every scene by `series evaluate` (in-sample: the folds are the figures).
series-real: install
	$(MINESCAN) series train --images $(TAILINGS) --out $(SERIES_REAL_OUT)/model --folds 4 \
	    --width 16 --tile 128 --tiles-per-scene 24 --epochs 20 --seed 0 --deterministic \
	    --name series-tailings-rgb --model-version 1 --overwrite
	$(MINESCAN) series evaluate --model $(SERIES_REAL_OUT)/model --images $(TAILINGS) \
	    --json $(SERIES_REAL_OUT)/evaluate-in-sample.json

bench: install
	$(MINESCAN) bench --size $(BENCH_SIZE) --out $(BENCH_OUT)
	$(MINESCAN) bench backends --json $(BENCH_OUT)/backends.json
	$(MINESCAN) train bench --json $(BENCH_OUT)/train.json

# On a GPU node with the gpu extra (EXTRAS=gpu,dev): one short run that prints every figure.
bench-gpu: install
	$(MINESCAN) bench gpu --size $(BENCH_SIZE) --out $(BENCH_OUT)

bench-series: install
	$(MINESCAN) series bench-filters --size $(BENCH_SERIES_SIZE) --years 20 --out $(BENCH_SERIES_OUT)

bench-reduce: install
	$(MINESCAN) bench-reduce --scenes 1000 --per-scene 2000 --out $(BENCH_OUT)/reduce

bench-map: install
	$(PY) scripts/bench_map.py --sites $(MAP_SITES) --out $(BENCH_OUT)/map

vendor: install
	scripts/vendor-leaflet.sh
	$(PY) scripts/boundaries.py $(SHARED)/data/amw/national_admin.geojson

demo-models: install
	$(MINESCAN) models train-demo --out job/minescan/models/demo --overwrite

BUILD_ARGS = $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE))

image:
	$(CONTAINER) build --platform $(PLATFORM) $(BUILD_ARGS) --target cpu -t $(IMAGE):$(TAG)-cpu .
	$(CONTAINER) build --platform $(PLATFORM) $(BUILD_ARGS) --target gpu -t $(IMAGE):$(TAG)-gpu .

image-local:
	scripts/image-local.sh

push:
	$(CONTAINER) push $(IMAGE):$(TAG)-cpu
	$(CONTAINER) push $(IMAGE):$(TAG)-gpu

.PHONY: release lock
release:
	IMAGE=$(IMAGE) TAG=$(TAG) CONTAINER=$(CONTAINER) PLATFORM=$(PLATFORM) \
	    $(if $(BASE_IMAGE),BASE_IMAGE=$(BASE_IMAGE)) scripts/release.sh

# The lock is resolved for the image (Linux x86-64, CPython 3.11), whatever this machine is.
lock: install
	UV=$(VENV)/bin/uv scripts/lock.sh

manifests: install
	scripts/manifests.sh

deploy:
	IMAGE=$(IMAGE) TAG=$(TAG) GSA=$(GSA) MANIFEST=$(MANIFEST) RUN=$(RUN) SCENES=$(SCENES) scripts/deploy.sh $(OVERLAY)

clean:
	rm -rf $(OUT) $(BENCH_OUT) $(BENCH_SERIES_OUT) $(SERIES_OUT) $(SERIES_REAL_OUT) build dist job/*.egg-info
