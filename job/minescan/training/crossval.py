"""Cross-validation, the final model, and the model directory: `minescan train` as a function.

Protocol (Balaniuk et al. 2020, §4.1–4.2): k-fold (10) with classes spread evenly, 30 epochs, metrics per
validation fold, mean ± sd across folds, mean confusion matrix. Normalisation statistics
come from each training fold only, so the validation fold never leaks into its own
preprocessing. Both the paper's random split and a spatially grouped split are reported
(see `folds`). The final model is trained on all chips and written, with the report, to
a temporary sibling of `--out` that is renamed into place only when everything succeeded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..bands import DEFAULT_BANDS
from ..errors import InputError, ModelError
from ..models.card import ModelCard, load_model_dir, save_model_dir
from ..ores import Impact, load_ore_mapping
from . import folds as folds_mod
from .data import ChipSet, DataSpec, compute_normalization, load_chips, value_range
from .loop import CHIP_SIZE, CLASS_NAMES, Kind, TrainSettings, predict, train
from .metrics import classification_metrics, summarize_folds

log = logging.getLogger(__name__)

Scheme = Literal["random", "spatial"]
REPORT_DIR = "report"

#: on_epoch(scheme or "final", fold index or None, epoch, record)
EpochCallback = Callable[[str, int | None, int, dict[str, float]], None]


class TrainConfig(BaseModel):
    """Everything `minescan train <kind>` needs; saved in the model card."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    data: DataSpec
    out: str = Field(description="model directory to write")
    bands: tuple[str, ...] = Field(DEFAULT_BANDS, description="band names, in channel order")
    name: str | None = Field(None, description="model name; default '<kind>'")
    version: str | None = Field(None, description="model version; default UTC timestamp")
    threshold: float = Field(0.6, gt=0, lt=1, description="p(mine) threshold (discovery)")
    folds: int = Field(10, ge=0, description="k of k-fold; 0 skips cross-validation")
    cv: tuple[Scheme, ...] = Field(("random", "spatial"), description="which splits to report")
    group_distance_m: float = Field(2000.0, gt=0, description="spatial grouping distance, m")
    balance: Literal["none", "undersample"] = Field(
        "none", description="undersample larger classes to the smallest class's count"
    )
    ore_mapping: str | None = Field(None, description="JSON ore table (impact from ore names)")
    gold_impact: Impact | None = Field(None, description="override the gold impact class")
    settings: TrainSettings = Field(default_factory=TrainSettings)
    strategy: str = Field("default", description="tf.distribute strategy name, for the record")
    max_steps: int | None = Field(None, ge=1, description="stop each training early (tests)")
    overwrite: bool = False

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES[self.kind]


def load_training_chips(config: TrainConfig) -> ChipSet:
    mapping = load_ore_mapping(config.ore_mapping, config.gold_impact)
    chips = load_chips(
        config.data, kind=config.kind, class_names=config.class_names, bands=config.bands,
        size=CHIP_SIZE[config.kind], ore_mapping=mapping,
    )
    if config.balance == "undersample":
        chips = undersample(chips, config.settings.seed)
    ratio = max(chips.counts().values()) / max(min(chips.counts().values()), 1)
    if ratio > 1.5:
        log.warning("classes are unbalanced %s; the paper's sets were balanced "
                    "(--balance undersample)", chips.counts())
    return chips


def undersample(chips: ChipSet, seed: int) -> ChipSet:
    """Keep an equal, seeded random number of chips of each class (the smallest count)."""
    rng = np.random.default_rng(seed)
    n = min(chips.counts().values())
    keep = np.sort(np.concatenate(
        [rng.choice(np.flatnonzero(chips.y == c), n, replace=False) for c in range(len(chips.class_names))]
    ))
    source = dict(chips.source, undersampled_from=chips.counts())
    return ChipSet(
        x=chips.x[keep], y=chips.y[keep], class_names=chips.class_names, bands=chips.bands,
        origins=tuple(chips.origins[i] for i in keep), lon=chips.lon[keep], lat=chips.lat[keep],
        source=source,
    )


def make_folds(chips: ChipSet, scheme: Scheme, config: TrainConfig) -> list[folds_mod.Fold]:
    seed = config.settings.seed
    if scheme == "random":
        return folds_mod.stratified_kfold(chips.y, config.folds, seed)
    groups = folds_mod.spatial_groups(chips.lon, chips.lat, config.group_distance_m)
    return folds_mod.grouped_stratified_kfold(chips.y, groups, config.folds, seed)


def cross_validate(
    chips: ChipSet, scheme: Scheme, splits: list[folds_mod.Fold], config: TrainConfig,
    strategy: Any, on_epoch: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train and score one network per fold; per-fold metrics and curves, and their summary."""
    threshold = config.threshold if config.kind == "discovery" else None
    records = []
    for fold in splits:
        norm = compute_normalization(chips.x, fold.train)
        settings = config.settings.model_copy(update={"seed": config.settings.seed + 1 + fold.index})
        callback = (lambda e, r, f=fold.index: on_epoch(scheme, f, e, r)) if on_epoch else None
        model, history = train(
            config.kind, chips.x, chips.y, fold.train, norm, settings, strategy,
            val_idx=fold.val, on_epoch=callback, max_steps=config.max_steps,
        )
        proba = predict(model, chips.x, fold.val, norm)
        metrics = classification_metrics(chips.y[fold.val], proba, chips.class_names, threshold)
        records.append({
            "fold": fold.index, "n_train": int(fold.train.size), "n_val": int(fold.val.size),
            "val_counts": {n: int((chips.y[fold.val] == i).sum()) for i, n in enumerate(chips.class_names)},
            **metrics, "history": history.as_dict(),
        })
        log.info("%s fold %d/%d: accuracy %.4f kappa %.4f", scheme, fold.index + 1, len(splits),
                 metrics["accuracy"], metrics["kappa"],
                 extra={"cv": scheme, "fold": fold.index, "accuracy": metrics["accuracy"]})
    out: dict[str, Any] = {"folds": records, "summary": summarize_folds(records)}
    if scheme == "spatial":
        groups = folds_mod.spatial_groups(chips.lon, chips.lat, config.group_distance_m)
        out["n_groups"] = int(np.unique(groups).size)
        out["group_distance_m"] = config.group_distance_m
    return out


def run_training(
    config: TrainConfig, strategy: Any, *, write: bool = True, on_epoch: EpochCallback | None = None
) -> ModelCard | None:
    """Cross-validate, train the final model on all chips, write the model directory.

    `write=False` on the non-chief workers of a multi-worker run: they take part in every
    step but leave the output to worker 0.
    """
    out = Path(config.out)
    if write and out.exists() and not config.overwrite:
        raise ModelError(f"{out} already exists; pass --overwrite to replace it")
    started = time.perf_counter()
    chips = load_training_chips(config)
    log.info("loaded %d chips %s from %s", chips.y.size, chips.counts(), chips.source.get("type"),
             extra={"counts": chips.counts()})
    cv: dict[str, Any] = {}
    # All splits first: an impossible one (too few spatial groups) fails before hours of training.
    splits: dict[Scheme, list[folds_mod.Fold]] = {}
    if config.folds:
        for scheme in config.cv:
            if scheme == "spatial" and not chips.has_centres:
                cv[scheme] = {"skipped": "chips have no georeferenced centres"}
                log.warning("spatial cross-validation skipped: chips have no georeferenced centres")
                continue
            splits[scheme] = make_folds(chips, scheme, config)
    for scheme, scheme_splits in splits.items():
        cv[scheme] = cross_validate(chips, scheme, scheme_splits, config, strategy, on_epoch)
    cv = {scheme: cv[scheme] for scheme in config.cv if scheme in cv}

    all_idx = np.arange(chips.y.size)
    norm = compute_normalization(chips.x, all_idx)
    final_cb = (lambda e, r: on_epoch("final", None, e, r)) if on_epoch else None
    model, history = train(config.kind, chips.x, chips.y, all_idx, norm, config.settings,
                           strategy, on_epoch=final_cb, max_steps=config.max_steps)
    if not write:
        return None

    from .report import write_report

    metrics = {
        scheme: ({"skipped": res["skipped"]} if "skipped" in res else res["summary"])
        for scheme, res in cv.items()
    }
    metrics["folds"] = config.folds
    training = {
        "data": chips.describe(),
        "config": config.model_dump(mode="json"),
        "seeds": {"base": config.settings.seed, "folds": "base + 1 + fold index", "final": config.settings.seed},
        "strategy": config.strategy,
        "replicas": int(strategy.num_replicas_in_sync),
        "final_history": history.as_dict(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    version = config.version or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    card = save_model_dir(
        model, out, kind=config.kind, name=config.name or config.kind, version=version,
        bands=list(chips.bands), normalization=norm, class_names=list(chips.class_names),
        input_size=chips.size, threshold=config.threshold if config.kind == "discovery" else None,
        input_dtype=str(chips.x.dtype), input_range=value_range(chips.x),
        training=training, metrics=metrics, overwrite=config.overwrite,
        extras=lambda staged, card: write_report(staged / REPORT_DIR, card=card, cv=cv,
                                                 final_history=history.as_dict()),
    )
    log.info("wrote %s (%s)", out, card.ref, extra={"model": card.ref})
    return card


def evaluate_model(model_dir: str, spec: DataSpec, *, ore_mapping: str | None = None,
                   gold_impact: Impact | None = None) -> dict[str, Any]:
    """Score a model directory on held-out chips with its own bands, normalisation, threshold."""
    loaded = load_model_dir(model_dir)
    card = loaded.card
    chips = load_chips(
        spec, kind=card.kind, class_names=tuple(card.class_names), bands=tuple(card.bands),
        size=card.input_size, ore_mapping=load_ore_mapping(ore_mapping, gold_impact),
        training=False,
    )
    if chips.y.size == 0:
        raise InputError("no chips to evaluate")
    proba = predict(loaded.model, chips.x, np.arange(chips.y.size), card.normalization)
    metrics = classification_metrics(chips.y, proba, tuple(card.class_names),
                                     card.threshold if card.kind == "discovery" else None)
    return {"model": card.ref, "kind": card.kind, "data": chips.describe(), **metrics}
