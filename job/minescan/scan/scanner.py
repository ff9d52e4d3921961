"""Scanning one scene: discovery on seamless sub-tiles, impact filtering, detections.

The scene is read through rasterio windows, one sub-tile (with its halo) at a time, so the
memory held is one sub-tile's, whatever the scene's size. Each window serves both networks:
the 21×21 impact patch of a cell lies inside the cell's chip, which lies inside the window
that computed the cell, so patches always come from real neighbouring data.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..log import progress, timed
from . import geometry
from .config import ScanConfig
from .inference import (
    DiscoveryRunner,
    classify_patches,
    extract_patches,
    max_tile_pixels_for_budget,
    owned_cells,
)
from .scene import (
    SceneInfo,
    check_input_values,
    inspect_scene,
    open_raster,
    pixel_centres_lonlat,
    read_window,
    valid_mask,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..batch.manifest import GridDef
    from ..models.card import LoadedModel

log = logging.getLogger(__name__)


@dataclass
class ScanResult:
    """Everything one scan produced, before it is written anywhere."""

    scene: SceneInfo
    p_mine: np.ndarray  # (cell rows, cell cols) float32, NaN where masked as nodata
    detections: "pd.DataFrame"
    model_version: str
    threshold: float
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    n_tiles: int = 0
    halo_overhead: float = 0.0
    global_offset: tuple[int, int] | None = None


def scan_scene(
    path: str,
    discovery: "LoadedModel",
    impact: "LoadedModel",
    config: ScanConfig | None = None,
    *,
    scene_id: str | None = None,
) -> ScanResult:
    """Scan one scene file; raises `InputError` before any work if the scene is unusable."""
    config = config or ScanConfig()
    if discovery.card.bands != impact.card.bands:
        raise InputError(
            f"the discovery model takes bands {discovery.card.bands} but the impact model "
            f"takes {impact.card.bands}: use models trained on the same band list"
        )
    threshold = discovery.card.threshold if config.threshold is None else config.threshold
    timings: dict[str, float] = {}
    with open_raster(path) as src:
        scene = inspect_scene(src, tuple(discovery.card.bands), scene_id,
                              max_pixels=config.max_scene_pixels)
        check_input_values(src, scene, discovery.card, config.input_scale)
        if config.input_scale is not None:
            discovery, impact = (_rescaled(m, config.input_scale) for m in (discovery, impact))
        n_bands = len(scene.band_indexes)
        tile_pixels = max_tile_pixels_for_budget(config.memory_budget_mb * 2**20, n_bands)
        tiles = geometry.plan_subtiles(scene.height, scene.width, tile_pixels)
        runner = DiscoveryRunner(discovery.model)
        p_mine = np.full(
            (geometry.n_cells(scene.height), geometry.n_cells(scene.width)), np.nan, np.float32
        )
        found: list[dict[str, np.ndarray]] = []
        valid_pixels = 0
        for tile in progress(tiles, len(tiles), f"scan {scene.scene_id}"):
            tile_found, n_valid = _scan_tile(
                src, scene, tile, runner, discovery, impact, config, threshold, p_mine, timings
            )
            valid_pixels += n_valid
            found.extend(tile_found)
            log.debug("tile done", extra={"scene_id": scene.scene_id, "tile_row": tile.row.cells.start,
                                          "tile_col": tile.col.cells.start})
    if valid_pixels == 0:
        raise InputError(
            f"{path} holds no valid pixel (all nodata): check the export's region and nodata value"
        )
    with timed(timings, "georeference"):
        detections = _detections_table(found, scene, discovery, impact, config)
    counts = {
        "cells": int(p_mine.size),
        "valid_cells": int(np.isfinite(p_mine).sum()),
        "candidates": int(np.nansum(p_mine >= threshold)),
        "detections": int(detections["kept"].sum()) if len(detections) else 0,
        "dropped_no_ore": int((~detections["kept"]).sum()) if len(detections) else 0,
        "valid_pixels": int(valid_pixels),
    }
    if config.drop_no_ore and len(detections):
        detections = detections[detections["kept"]].reset_index(drop=True)
    result = ScanResult(
        scene=scene,
        p_mine=p_mine,
        detections=detections,
        model_version=_model_version(discovery, impact),
        threshold=float(threshold),
        counts=counts,
        timings=timings,
        n_tiles=len(tiles),
        halo_overhead=geometry.halo_overhead(tiles, scene.height, scene.width),
        global_offset=global_cell_offset(scene, config.grid),
    )
    log.info(
        "scanned scene",
        extra={"scene_id": scene.scene_id, **counts, "tiles": len(tiles),
               "halo_overhead": round(result.halo_overhead, 4)},
    )
    return result


def _scan_tile(src, scene, tile, runner, discovery, impact, config, threshold, p_mine, timings):
    from rasterio.windows import Window

    rows, cols = tile.row.pixels, tile.col.pixels
    with timed(timings, "read"):
        raw = read_window(src, scene, Window(cols.start, rows.start, len(cols), len(rows)))
        valid = valid_mask(raw, scene.nodata)
    n_valid = int(valid.sum())
    cell_rows = slice(tile.row.cells.start, tile.row.cells.stop)
    cell_cols = slice(tile.col.cells.start, tile.col.cells.stop)
    if n_valid == 0:
        return [], 0  # all nodata: the cells stay NaN and the network is not run
    with timed(timings, "discovery"):
        x = discovery.card.normalization.apply(np.moveaxis(raw, 0, -1))
        x[~valid] = 0.0  # nodata enters the network as the training mean
        p = owned_cells(runner(x), tile)
        del x
        usable = _usable_cells(valid, tile, config.max_nodata_fraction)
        p = np.where(usable, p, np.nan).astype(np.float32)
        p_mine[cell_rows, cell_cols] = p
    hits = np.argwhere(p >= threshold)
    if len(hits) == 0:
        return [], n_valid
    with timed(timings, "impact"):
        cell_r = hits[:, 0] + tile.row.cells.start
        cell_c = hits[:, 1] + tile.col.cells.start
        centres = np.stack([geometry.centre_pixel(cell_r), geometry.centre_pixel(cell_c)], axis=1)
        patches = extract_patches(
            np.moveaxis(raw, 0, -1),
            centres,
            window_origin=(rows.start, cols.start),
            scene_shape=scene.shape,
        )
        scores = classify_patches(
            impact.model,
            impact.card.normalization.apply(patches),
            tuple(impact.card.class_names),
            config.impact_batch_size,
        )
    return [
        {
            "cell_row": cell_r,
            "cell_col": cell_c,
            "pixel_row": centres[:, 0],
            "pixel_col": centres[:, 1],
            "p_mine": p[hits[:, 0], hits[:, 1]],
            "impact": scores.probabilities,
        }
    ], n_valid


def _usable_cells(valid: np.ndarray, tile: geometry.SubTile, max_nodata_fraction: float) -> np.ndarray:
    """Cells owned by `tile` that may produce detections.

    A cell is unusable when its centre 21×21 patch touches nodata (nothing there to
    classify) or when more than `max_nodata_fraction` of its 201-px chip is nodata.
    """
    good = valid.astype(np.int64)
    sat = np.zeros((good.shape[0] + 1, good.shape[1] + 1), np.int64)
    sat[1:, 1:] = good.cumsum(0).cumsum(1)

    def box_sums(size: int, offset: int) -> np.ndarray:
        """Nodata pixels in each cell's box; pixels past the scene edge (where the last
        cells' chips run, zero-padded by the network) count as nodata."""
        r = geometry.STRIDE * np.arange(tile.row.cells.start, tile.row.cells.stop) + offset
        c = geometry.STRIDE * np.arange(tile.col.cells.start, tile.col.cells.stop) + offset
        r = r - tile.row.pixels.start
        c = c - tile.col.pixels.start
        r0, r1 = np.clip(r, 0, good.shape[0])[:, None], np.clip(r + size, 0, good.shape[0])[:, None]
        c0, c1 = np.clip(c, 0, good.shape[1])[None, :], np.clip(c + size, 0, good.shape[1])[None, :]
        return size * size - (sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0])

    chip_bad = box_sums(geometry.CHIP, 0)
    patch_bad = box_sums(geometry.PATCH, geometry.CENTRE_OFFSET - geometry.PATCH // 2)
    return (patch_bad == 0) & (chip_bad <= max_nodata_fraction * geometry.CHIP * geometry.CHIP)


def _rescaled(model: "LoadedModel", scale: float) -> "LoadedModel":
    """The model with normalisation statistics for inputs `scale` times smaller."""
    from dataclasses import replace

    card = model.card.model_copy(update={"normalization": model.card.normalization.scaled(scale)})
    return replace(model, card=card)


def _model_version(discovery: "LoadedModel", impact: "LoadedModel") -> str:
    return f"{discovery.card.ref}+{impact.card.ref}"


def _detections_table(found, scene, discovery, impact, config) -> "pd.DataFrame":
    import pandas as pd

    from ..outputs import empty_detections

    if not found:
        return empty_detections()
    cat = {k: np.concatenate([f[k] for f in found]) for k in found[0]}
    lon, lat = pixel_centres_lonlat(scene.transform, scene.crs_wkt, cat["pixel_row"], cat["pixel_col"])
    names = list(impact.card.class_names)
    probs = cat["impact"]
    winner = np.asarray(names, dtype=object)[np.argmax(probs, axis=1)]
    offset = global_cell_offset(scene, config.grid)
    n = len(lon)
    table = pd.DataFrame(
        {
            "scene_id": np.full(n, scene.scene_id, dtype=object),
            "cell_row": cat["cell_row"].astype(np.int32),
            "cell_col": cat["cell_col"].astype(np.int32),
            "pixel_row": cat["pixel_row"].astype(np.int32),
            "pixel_col": cat["pixel_col"].astype(np.int32),
            "lon": lon,
            "lat": lat,
            "p_mine": cat["p_mine"].astype(np.float32),
            "impact_class": winner,
            "p_high": probs[:, names.index("high")].astype(np.float32),
            "p_low": probs[:, names.index("low")].astype(np.float32),
            "p_no_ore": probs[:, names.index("no_ore")].astype(np.float32),
            "kept": winner != "no_ore",
            "model_version": np.full(n, _model_version(discovery, impact), dtype=object),
            "global_row": pd.array(
                cat["cell_row"] + offset[0] if offset else [None] * n, dtype="Int64"
            ),
            "global_col": pd.array(
                cat["cell_col"] + offset[1] if offset else [None] * n, dtype="Int64"
            ),
        }
    )
    return table.sort_values(["cell_row", "cell_col"], kind="stable").reset_index(drop=True)


def global_cell_offset(scene: SceneInfo, grid: "GridDef | None") -> tuple[int, int] | None:
    """(row, col) of the scene's cell (0, 0) in the global grid, if the scene is aligned to it.

    Aligned means: same CRS, north-up, same pixel size, and an origin a whole number of
    27-px strides from the grid's origin. Otherwise cells are scene-local only (None).
    """
    if grid is None:
        return None
    from rasterio.crs import CRS

    t = scene.transform
    if CRS.from_wkt(scene.crs_wkt) != CRS.from_user_input(grid.crs):
        return None
    px = grid.pixel_deg
    if t.b != 0 or t.d != 0 or not math.isclose(t.a, px, rel_tol=1e-9) or not math.isclose(-t.e, px, rel_tol=1e-9):
        return None
    col_px = (t.c - grid.origin_lon) / px
    row_px = (grid.origin_lat - t.f) / px
    offsets = []
    for px in (row_px, col_px):
        units = px / geometry.STRIDE
        if abs(units - round(units)) > 1e-3 / geometry.STRIDE:
            return None
        offsets.append(int(round(units)))
    return offsets[0], offsets[1]
