"""`minescan series train` as a function: tiles → the one training loop → a model directory.

The U-Net learns per-pixel mining from 256 × 256 tiles (MapBiomas mining ATBD, Col. 9,
Table 2) with binary cross-entropy, through the same `training.loop.train` (and so the same
tf.distribute strategies) as the paper's networks. The model directory carries the input
feature (or band) list, the normalisation fitted on the training tiles, the sigmoid
threshold, the U-Net width and the spectral baseline fitted on the same training scenes.

With an image folder, `folds` > 0 first runs a k-fold cross-validation over *scenes* (each
scene's pixels are held out whole, so neighbouring tiles never straddle train and test),
scoring the U-Net and the baseline on every held-out scene; then the final model is trained
on all scenes. The report (JSON + Markdown) goes into the model directory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import InputError, ModelError
from ..models.card import ModelCard, Normalization, save_model_dir
from ..training.data import compute_normalization, value_range
from ..training.loop import Segmentation, TrainSettings, train
from .baseline import SpectralBaseline, baseline_sample, fit_baseline_samples
from .cube import open_feature_cube
from .data import LabelledScene, TileSet, cube_scenes, image_scenes, sample_tiles
from .evaluate import score_scene
from .scores import PixelCounts
from .unet import CLASS_NAMES, TILE, WIDTH, build_unet
from .windows import STEP, WINDOW, check_window

log = logging.getLogger(__name__)

REPORT_DIR = "report"
EpochCallback = Callable[[str, int | None, int, dict[str, float]], None]


class SeriesTrainConfig(BaseModel):
    """Everything `minescan series train` needs; saved in the model card."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    out: str = Field(description="model directory to write")
    cube: str | None = Field(None, description="feature cube (with `labels`)")
    labels: str | None = Field(None, description="folder of per-year label masks on the cube's grid")
    images: str | None = Field(None, description="folder of img_NNN.tif + mask_NNN.tif pairs")
    bands: tuple[str, ...] | None = Field(None, description="input features/bands; default all")
    width: int = Field(WIDTH, ge=1, description="filters of the first U-Net block (method: 64)")
    tile: int = Field(TILE, ge=16, description="training tile edge, px (method: 256)")
    tiles_per_scene: int = Field(16, ge=1, description="tiles drawn per scene (per year of a cube)")
    positive_share: float = Field(0.5, ge=0, le=1, description="share of tiles centred near mining")
    threshold: float = Field(0.5, gt=0, lt=1, description="p(mining) at or above which a pixel is mining")
    folds: int = Field(0, ge=0, description="k of a k-fold over scenes (image folders); 0 skips it")
    window: int = Field(WINDOW, description="prediction window for held-out scenes, px")
    step: int = Field(STEP, description="prediction step (kept centre), px")
    settings: TrainSettings = Field(default_factory=TrainSettings)
    name: str | None = Field(None, description="model name; default 'series'")
    version: str | None = Field(None, description="model version; default UTC timestamp")
    strategy: str = Field("default", description="tf.distribute strategy name, for the record")
    max_steps: int | None = Field(None, ge=1, description="stop each training early (tests)")
    overwrite: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> SeriesTrainConfig:
        if (self.images is None) == (self.cube is None):
            raise ValueError("give either an image folder or a cube with labels")
        if self.cube is not None and self.labels is None:
            raise ValueError("a cube needs a folder of per-year label masks")
        if self.folds == 1 or (self.folds and self.images is None):
            raise ValueError("folds (≥ 2) split the scenes of an image folder")
        if self.tile % 16:
            raise ValueError(f"tile {self.tile} must be a multiple of 16 (the U-Net pools four times)")
        check_window(self.window, self.step)
        return self


class _Source:
    """The labelled scenes of a config, re-iterable (a cube's years are read on demand)."""

    def __init__(self, config: SeriesTrainConfig) -> None:
        self.config = config
        if config.images is not None:
            self._scenes, self.bands = image_scenes(config.images, config.bands)
            self.synthetic: str | None = None
            self.kind = "images"
        else:
            assert config.cube is not None
            self.cube = open_feature_cube(config.cube)
            self.bands = self.cube.features if config.bands is None else tuple(config.bands)
            self.cube.feature_indexes(self.bands)
            self.synthetic = self.cube.attrs.get("synthetic")
            self.kind = "cube"

    def scenes(self, names: Sequence[str] | None = None) -> Iterator[LabelledScene]:
        if self.kind == "images":
            yield from (s for s in self._scenes if names is None or s.name in names)
            return
        for scene in cube_scenes(self.cube, self.config.labels, self.bands):
            if names is None or scene.name in names:
                yield scene

    def names(self) -> list[str]:
        if self.kind == "images":
            return [s.name for s in self._scenes]
        return [s.name for s in self.scenes()]

    def describe(self) -> dict[str, Any]:
        where = self.config.images if self.kind == "images" else self.config.cube
        return {"type": self.kind, "path": where, "bands": list(self.bands),
                **({"synthetic": self.synthetic} if self.synthetic else {})}


def _fit(source: _Source, names: Sequence[str] | None, config: SeriesTrainConfig, strategy: Any,
         settings: TrainSettings, on_epoch: Callable[[int, dict[str, float]], None] | None
         ) -> tuple[Any, Normalization, TileSet, Any, SpectralBaseline]:
    """The U-Net and the spectral baseline fitted on the scenes `names` (all by default),
    which are read once: a cube's years are read from disk as they are needed."""
    samples = []

    def scenes() -> Iterator[LabelledScene]:
        for i, scene in enumerate(source.scenes(names)):
            samples.append(baseline_sample(scene, i, settings.seed))
            yield scene

    tiles = sample_tiles(scenes(), per_scene=config.tiles_per_scene, tile=config.tile,
                         positive_share=config.positive_share, seed=settings.seed)
    baseline = fit_baseline_samples(samples, source.bands)
    idx = np.arange(tiles.y.shape[0])
    norm = compute_normalization(tiles.x, idx)
    objective = Segmentation(lambda n_bands: build_unet(n_bands, config.width))
    model, history = train(objective, tiles.x, tiles.y, idx, norm, settings, strategy,
                           on_epoch=on_epoch, max_steps=config.max_steps)
    return model, norm, tiles, history, baseline


def cross_validate_scenes(source: _Source, config: SeriesTrainConfig, strategy: Any,
                          on_epoch: EpochCallback | None = None) -> dict[str, Any]:
    """k-fold over scenes: per held-out scene, the U-Net's and the baseline's pixel scores."""
    names = source.names()
    if config.folds > len(names):
        raise InputError(f"{config.folds} folds need at least as many scenes; {len(names)} given")
    order = np.random.default_rng(config.settings.seed).permutation(len(names))
    folds = [sorted(names[i] for i in order[k :: config.folds]) for k in range(config.folds)]
    rows, totals = [], {"unet": PixelCounts(), "baseline": PixelCounts()}
    for k, held_out in enumerate(folds):
        fold = {"unet": PixelCounts(), "baseline": PixelCounts()}
        train_names = [n for n in names if n not in held_out]
        settings = config.settings.model_copy(update={"seed": config.settings.seed + 1 + k})
        callback = (lambda e, r, f=k: on_epoch("scenes", f, e, r)) if on_epoch else None
        model, norm, _, _, baseline = _fit(source, train_names, config, strategy, settings, callback)
        for scene in source.scenes(held_out):
            unet, base = score_scene(model, norm, config.threshold, baseline, scene, source.bands,
                                     window=config.window, step=config.step)
            fold = {"unet": fold["unet"] + unet, "baseline": fold["baseline"] + base}
            rows.append({"scene": scene.name, "fold": k, "mining_px": int(scene.mining.sum()),
                         "unet": unet.scores(), "baseline": base.scores(),
                         "baseline_index": baseline.index})
        totals = {name: totals[name] + fold[name] for name in totals}
        f1 = {name: c.scores()["f1"] for name, c in fold.items()}
        log.info("scene fold %d/%d (held out %s): F1 U-Net %.3f, baseline %.3f", k + 1, config.folds,
                 held_out, f1["unet"], f1["baseline"], extra={"fold": k, "held_out": held_out, **f1})
    return {"protocol": f"{config.folds}-fold over scenes", "folds": folds, "scenes": rows,
            "overall": {name: c.scores() for name, c in totals.items()}}


def run_series_training(config: SeriesTrainConfig, strategy: Any, *, write: bool = True,
                        on_epoch: EpochCallback | None = None) -> ModelCard | None:
    """Cross-validate over scenes (if asked), train the final U-Net, write the model directory."""
    out = Path(config.out)
    if write and out.exists() and not config.overwrite:
        raise ModelError(f"{out} already exists; pass --overwrite to replace it")
    started = time.perf_counter()
    source = _Source(config)
    cv = cross_validate_scenes(source, config, strategy, on_epoch) if config.folds else None
    final_cb = (lambda e, r: on_epoch("final", None, e, r)) if on_epoch else None
    model, norm, tiles, history, baseline = _fit(source, None, config, strategy, config.settings, final_cb)
    if not write:
        return None
    from .report import write_series_report

    training = {
        "data": {**source.describe(), **tiles.describe()},
        "config": config.model_dump(mode="json"),
        "architecture": {"network": "MapBiomas U-Net", "width": config.width,
                         "parameters": int(model.count_params())},
        "baseline": baseline.as_json(),
        "strategy": config.strategy,
        "replicas": int(strategy.num_replicas_in_sync),
        "final_history": history.as_dict(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    metrics = {"cv": cv["overall"], "protocol": cv["protocol"]} if cv else {}
    version = config.version or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    card = save_model_dir(
        model, out, kind="series", name=config.name or "series", version=version,
        bands=list(source.bands), normalization=norm, class_names=list(CLASS_NAMES),
        input_size=config.tile, threshold=config.threshold, input_range=value_range(tiles.x),
        training=training, metrics=metrics,
        overwrite=config.overwrite,
        extras=lambda staged, card: write_series_report(staged / REPORT_DIR, card, cv),
    )
    log.info("wrote %s (%s)", out, card.ref, extra={"model": card.ref})
    return card
