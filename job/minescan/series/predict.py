"""The U-Net over a whole scene or cube: seamless windows, no-data kept as no-data.

A pixel with any feature missing (NaN: no observation that year) has no class: the class
cube marks it `NODATA` and the gap-fill filter later takes its class from another year, as
the method does. Elsewhere p(mining) ≥ the model card's threshold is `MINING` (30).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..log import progress
from .cube import open_feature_cube
from .cube_io import write_class_cube
from .filters import MINING, NODATA, NOT_MINING
from .windows import STEP, WINDOW, pad_scene, plan_windows

if TYPE_CHECKING:
    from ..models.card import LoadedModel, Normalization

log = logging.getLogger(__name__)

#: the class cube's name inside a region's shard
CLASSES = "classes.zarr"


def predict_probability(model: Any, x: np.ndarray, norm: Normalization, *, window: int = WINDOW,
                        step: int = STEP, batch: int = 4) -> np.ndarray:
    """(rows, cols) float32 p(mining) of a (rows, cols, bands) scene; NaN where any band is.

    Windows overlap by `window − step` and keep their centres (see `windows`), so the
    result does not depend on how the scene is cut.
    """
    rows, cols = x.shape[:2]
    plan = plan_windows(rows, cols, window, step)
    nodata = np.isnan(x).any(axis=-1) if np.issubdtype(x.dtype, np.floating) else None
    padded = pad_scene(np.nan_to_num(norm.apply(x), copy=False), plan)
    out = np.empty((rows, cols), np.float32)
    m = plan.margin
    for start in range(0, len(plan.windows), batch):
        group = plan.windows[start : start + batch]
        tiles = np.stack([padded[w.row : w.row + window, w.col : w.col + window] for w in group])
        proba = np.asarray(model(tiles, training=False), dtype=np.float32)[..., 0]
        for w, p in zip(group, proba):
            out[w.out_row : w.out_row + w.out_rows, w.out_col : w.out_col + w.out_cols] = \
                p[m : m + w.out_rows, m : m + w.out_cols]
    if nodata is not None:
        out[nodata] = np.nan
    return out


def classify(p_mining: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 classes: MINING where p ≥ threshold, NOT_MINING below, NODATA where p is NaN."""
    classes = np.where(p_mining >= threshold, MINING, NOT_MINING).astype(np.uint8)
    classes[np.isnan(p_mining)] = NODATA
    return classes


def load_series_model(path: str | os.PathLike[str], bands: Sequence[str] | None = None) -> LoadedModel:
    """A hash-checked series U-Net (a discovery or impact model is refused, exit 4); with
    `bands`, the model's inputs are checked against them before Keras loads anything."""
    from ..models.card import load_model_dir, verified_card

    card, _ = verified_card(path, kind="series")
    if bands is not None:
        missing = [b for b in card.bands if b not in bands]
        if missing:
            raise InputError(f"the model {card.ref} needs {list(card.bands)} but the input has "
                             f"{list(bands)} (missing {missing}): use a model trained on these inputs")
    return load_model_dir(path, kind="series")


def predict_cube(cube_path: str | os.PathLike[str], model_path: str | os.PathLike[str],
                 out: str | os.PathLike[str], *, years: Sequence[int] | None = None,
                 threshold: float | None = None, window: int = WINDOW, step: int = STEP,
                 overwrite: bool = False) -> list[int]:
    """Classify every year of a feature cube into the class cube `out`; returns its years.

    The model's features are checked against the cube's before anything runs. The years'
    classes are held in memory (uint8: 37 years of a 4096² Landsat tile are 620 MB) and
    written in one go, aside and renamed into place, in the class cube's all-years chunks.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists; pass --overwrite to replace it")
    cube = open_feature_cube(cube_path)
    loaded = load_series_model(model_path, cube.features)
    card = loaded.card
    chosen = list(cube.years) if years is None else [int(y) for y in years]
    absent = [y for y in chosen if y not in cube.years]
    if absent:
        raise InputError(f"the cube {cube_path} has no year {absent}; it holds {cube.years[0]}–{cube.years[-1]}")
    cut = card.threshold if threshold is None else threshold

    classes = np.empty((len(chosen), cube.grid.height, cube.grid.width), np.uint8)
    for i, year in enumerate(progress(chosen, len(chosen), "predicting years")):
        p = predict_probability(loaded.model, cube.year_features(year, card.bands),
                                card.normalization, window=window, step=step)
        classes[i] = classify(p, cut)
        log.debug("predicted %d", year, extra={"year": year, "mining_px": int(np.sum(p >= cut))})
    attrs = {"model": card.ref, "threshold": cut, "window": window, "step": step,
             "cube": str(cube_path), **({"synthetic": cube.attrs["synthetic"]} if "synthetic" in cube.attrs else {})}
    write_class_cube(out, classes, dataclasses.replace(cube.grid, years=tuple(chosen)), attrs=attrs)
    log.info("wrote %s: %d years classified by %s", out, len(chosen), card.ref,
             extra={"classes": str(out), "model": card.ref})
    return chosen


def region_uris(regions: str) -> list[str]:
    """The feature-cube URIs a regions file lists: one per line, blank lines and # comments skipped."""
    from .. import storage

    lines = [line.split("#", 1)[0].strip() for line in storage.read_text(regions).splitlines()]
    uris = [line for line in lines if line]
    if not uris:
        raise InputError(f"{regions} lists no feature cube: write one cube URI per line")
    return uris


def region_name(uri: str) -> str:
    """A region's id: its cube's name without `.zarr`, checked like a scene id."""
    from ..batch.layout import check_scene_id

    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return check_scene_id(name[: -len(".zarr")] if name.endswith(".zarr") else name)


def predict_region(regions: str, model_path: str, run: str, index: int, *, window: int = WINDOW,
                   step: int = STEP) -> dict[str, str]:
    """Classify region `index` of the regions file into the shard `run/regions/<name>/`.

    One Kubernetes pod's work, like the scan's `map`: the cube is downloaded, classified and
    committed whole with a marker (`batch.commit`, create-once), so a retried or racing pod
    skips a region already committed and a reader never sees a half-written class cube.
    """
    import tempfile

    from .. import storage
    from ..batch.commit import publish, read_committed

    uris = region_uris(regions)
    if not 0 <= index < len(uris):
        raise InputError(f"region index {index} is outside 0..{len(uris) - 1} of {regions}")
    name = region_name(uris[index])
    shard = storage.join(run, "regions", name)
    if read_committed(shard) is not None:
        return {"region": name, "status": "already committed", "shard": shard}
    with tempfile.TemporaryDirectory(prefix="minescan-series-") as tmp:
        cube = storage.localize(uris[index], Path(tmp) / "in")

        def fill(staging: Path) -> dict[str, object]:
            years = predict_cube(cube, model_path, staging / CLASSES, window=window, step=step)
            return {"region": name, "cube": uris[index], "years": [years[0], years[-1]],
                    "model": str(model_path)}

        committed = publish(shard, fill)
    status = "committed" if committed else "already committed"
    log.info("region %s %s", name, status, extra={"region": name, "shard": shard, "status": status})
    return {"region": name, "status": status, "shard": shard}
