"""Scanning one scene: discovery on seamless sub-tiles, impact filtering, detections.

The scene is read through rasterio windows, one sub-tile (with its halo) at a time, so the
memory held is one sub-tile's, whatever the scene's size. Each window serves both networks:
the 21×21 impact patch of a cell lies inside the cell's chip, which lies inside the window
that computed the cell, so patches always come from real neighbouring data.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..log import progress, timed
from . import geometry
from .backends import gpu_free_bytes, load_network, resolve_backend
from .config import ScanConfig
from .inference import max_tile_pixels_for_budget
from .scene import (
    SceneInfo,
    check_input_values,
    inspect_scene,
    open_raster,
    pixel_centres_lonlat,
    read_window,
)
from .tiles import Candidates, TileContext, run_tiles

#: GDAL's decoding threads for a window read; the reader thread overlaps the network anyway
GDAL_THREADS = 2

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
    backend: str = ""
    #: the memory budget and what the tile loop took above the process's resident set
    memory: dict[str, float] = field(default_factory=dict)


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
    backend = resolve_backend(config.backend)
    timings: dict[str, float] = {}
    with open_raster(path) as src:
        scene = inspect_scene(src, tuple(discovery.card.bands), scene_id,
                              max_pixels=config.max_scene_pixels)
        check_input_values(src, scene, discovery.card, config.input_scale)
    if config.input_scale is not None:
        discovery, impact = (_rescaled(m, config.input_scale) for m in (discovery, impact))
    n_bands = len(scene.band_indexes)
    gpu_free = gpu_free_bytes(backend)
    tile_pixels = max_tile_pixels_for_budget(config.memory_budget_mb * 2**20, n_bands, backend, gpu_free)
    tiles = geometry.plan_subtiles(scene.height, scene.width, tile_pixels)
    with timed(timings, "load"):
        ctx = TileContext(
            scene_shape=scene.shape,
            nodata=scene.nodata,
            discovery=load_network(discovery, backend, mixed_precision=config.mixed_precision),
            discovery_normalization=discovery.card.normalization,
            impact=load_network(impact, backend, mixed_precision=config.mixed_precision),
            impact_normalization=impact.card.normalization,
            n_classes=len(impact.card.class_names),
            threshold=threshold,
            max_nodata_fraction=config.max_nodata_fraction,
            impact_batch_size=config.impact_batch_size,
        )
    p_mine = np.full((geometry.n_cells(scene.height), geometry.n_cells(scene.width)), np.nan, np.float32)
    found: list[Candidates] = []
    valid_pixels = 0
    rss_before = current_rss_bytes()
    start = time.perf_counter()
    max_tile = max(t.n_input_pixels for t in tiles) if tiles else 0
    with window_reader(scene, max_tile) as read:
        for result in progress(run_tiles(ctx, tiles, read, overlap=config.overlap_stages), len(tiles), f"scan {scene.scene_id}"):
            tile = result.tile
            p_mine[tile.row.cells.start : tile.row.cells.stop, tile.col.cells.start : tile.col.cells.stop] = result.p_mine
            valid_pixels += result.n_valid
            found.append(result.candidates)
            for stage, seconds in result.timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
            log.debug("tile done", extra={"scene_id": scene.scene_id, "tile_row": tile.row.cells.start,
                                          "tile_col": tile.col.cells.start})
    timings["tiles_wall"] = time.perf_counter() - start
    memory = {"budget_mib": config.memory_budget_mb,
              "tile_loop_mib": round((peak_rss_bytes() - rss_before) / 2**20, 1),
              "gpu_free_mib": None if gpu_free is None else gpu_free >> 20}
    if valid_pixels == 0:
        raise InputError(
            f"{path} holds no valid pixel (all nodata): check the export's region and nodata value"
        )
    with timed(timings, "georeference"):
        detections = _detections_table(Candidates.concat(found, ctx.n_classes), scene, discovery, impact, config)
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
        backend=backend,
        memory=memory,
    )
    log.info(
        "scanned scene",
        extra={"scene_id": scene.scene_id, **counts, "tiles": len(tiles), "backend": backend,
               "halo_overhead": round(result.halo_overhead, 4)},
    )
    return result


@contextmanager
def window_reader(scene: SceneInfo, max_tile_pixels: int) -> Iterator[Callable[[geometry.SubTile], np.ndarray]]:
    """`read(tile)`: the tile's raw (B, h, w) window of the scene's model bands.

    GDAL decodes with two threads straight into one of two alternating buffers (the tile
    loop holds at most two raw sub-tiles; a returned array is reused from the call after
    next on), and keeps a block cache of one raw sub-tile (inside the memory budget), so
    the halo a tile shares with its left neighbour is decoded once. A file that breaks
    mid-read (truncated, corrupt) is an `InputError` naming it.
    """
    import rasterio
    from rasterio.windows import Window

    cache = gdal_cache_bytes(max_tile_pixels, len(scene.band_indexes))
    n_bands = len(scene.band_indexes)
    buffers: list[np.ndarray] = []
    calls = 0
    # entered on the scan's thread, these options are process-wide, so the reader thread
    # that calls `read` sees them too (rasterio keeps options per thread only off the main one)
    with rasterio.Env(GDAL_CACHEMAX=cache, GDAL_NUM_THREADS=str(GDAL_THREADS)), open_raster(scene.path) as src:
        # bands of mixed types are read as one type that holds them all (GDAL converts)
        dtype = np.result_type(*(np.dtype(src.dtypes[i - 1]) for i in scene.band_indexes))

        def read(tile: geometry.SubTile) -> np.ndarray:
            nonlocal calls
            rows, cols = tile.row.pixels, tile.col.pixels
            if len(buffers) < 2:
                buffers.append(np.empty(max_tile_pixels * n_bands, dtype))
            out = buffers[calls % 2][: n_bands * len(rows) * len(cols)].reshape(n_bands, len(rows), len(cols))
            calls += 1
            return read_window(src, scene, Window(cols.start, rows.start, len(cols), len(rows)), out=out)

        yield read


def gdal_cache_bytes(max_tile_pixels: int, n_bands: int) -> int:
    """GDAL block cache: one raw uint16 sub-tile (counted in `inference.bytes_per_input_pixel`)."""
    return max(16 * 2**20, 2 * n_bands * max_tile_pixels)


def current_rss_bytes() -> int:
    """Resident memory of this process now (Linux; 0 where /proc is absent)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rescaled(model: "LoadedModel", scale: float) -> "LoadedModel":
    """The model with normalisation statistics for inputs `scale` times smaller."""
    from dataclasses import replace

    card = model.card.model_copy(update={"normalization": model.card.normalization.scaled(scale)})
    return replace(model, card=card)


def _model_version(discovery: "LoadedModel", impact: "LoadedModel") -> str:
    return f"{discovery.card.ref}+{impact.card.ref}"


def _detections_table(found: Candidates, scene, discovery, impact, config) -> "pd.DataFrame":
    import pandas as pd

    from ..outputs import empty_detections

    n = len(found.cell_row)
    if n == 0:
        return empty_detections()
    lon, lat = pixel_centres_lonlat(scene.transform, scene.crs_wkt, found.pixel_row, found.pixel_col)
    names = list(impact.card.class_names)
    probs = found.impact
    winner = np.asarray(names, dtype=object)[np.argmax(probs, axis=1)]
    offset = global_cell_offset(scene, config.grid)
    table = pd.DataFrame(
        {
            "scene_id": np.full(n, scene.scene_id, dtype=object),
            "cell_row": found.cell_row.astype(np.int32),
            "cell_col": found.cell_col.astype(np.int32),
            "pixel_row": found.pixel_row.astype(np.int32),
            "pixel_col": found.pixel_col.astype(np.int32),
            "lon": lon,
            "lat": lat,
            "p_mine": found.p_mine.astype(np.float32),
            "impact_class": winner,
            "p_high": probs[:, names.index("high")].astype(np.float32),
            "p_low": probs[:, names.index("low")].astype(np.float32),
            "p_no_ore": probs[:, names.index("no_ore")].astype(np.float32),
            "kept": winner != "no_ore",
            "model_version": np.full(n, _model_version(discovery, impact), dtype=object),
            "global_row": pd.array(
                found.cell_row + offset[0] if offset else [None] * n, dtype="Int64"
            ),
            "global_col": pd.array(
                found.cell_col + offset[1] if offset else [None] * n, dtype="Int64"
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
