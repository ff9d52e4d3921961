"""Hectares of mining per year, class and region, from true pixel areas on the ellipsoid.

MapBiomas reports its mining map as areas per year, `class_id` (ATBD Table 3) and territory
(states, biomes, indigenous lands). A pixel's area is not a constant: on a latitude/longitude
grid (EPSG:4326, MapBiomas' own) it shrinks with the cosine of latitude, so each row's pixel
area is computed exactly on the CRS's ellipsoid with `pyproj.Geod`; every pixel of a row has
the same area. On a projected grid each pixel's nominal area is divided by the projection's
areal scale at its centre (`pyproj.Proj.get_factors`), exact for equal-area projections.

A pixel belongs to a region when its centre lies inside the region's polygon (the usual
zonal-statistics rule). Regions are read window by window, so memory holds one chunk of
the cube whatever a region's size. Besides the layers passed, the whole grid is one region
(layer `grid`, region `all`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..log import progress
from ..ores import fold
from ..outputs._atomic import atomic_dir
from .classes import CLASSES
from .cube_io import (
    CHUNK,
    ClassCube,
    CubeGrid,
    Window,
    bounds_window,
    chunk_windows,
    open_class_cube,
    window_transform,
)
from .filters import MINING

if TYPE_CHECKING:
    import pandas as pd
    import shapely

log = logging.getLogger(__name__)

M2_PER_HA = 10_000.0
#: columns of the area table, in order
AREA_COLUMNS = ("layer", "region_id", "region", "year", "class_id", "level_1", "level_2", "level_3",
                "pixels", "area_ha", "synthetic")
_NAME_COLUMNS = ("name", "nome", "name_field", "nm_uf", "nm_regiao", "bioma", "country", "id")
_MINING_VALUES = np.array([MINING, *CLASSES], dtype=np.int64)


# ---- pixel areas --------------------------------------------------------------------------------


def row_areas_m2(grid: CubeGrid, rows: slice) -> np.ndarray:
    """Area in m² of one pixel of each row in `rows` of a geographic grid, on its CRS's ellipsoid."""
    return _all_row_areas(grid)[rows]


@lru_cache(maxsize=4)
def _all_row_areas(grid: CubeGrid) -> np.ndarray:
    import pyproj

    crs = pyproj.CRS.from_user_input(grid.crs)
    geod = crs.get_geod()
    t = grid.transform
    lon0, lon1 = t.c, t.c + t.a
    areas = []
    for row in range(grid.height):
        top, bottom = t.f + t.e * row, t.f + t.e * (row + 1)
        area, _ = geod.polygon_area_perimeter([lon0, lon1, lon1, lon0], [top, top, bottom, bottom])
        areas.append(abs(area))
    frozen = np.array(areas, dtype=np.float64)
    frozen.flags.writeable = False  # shared by every caller through the cache
    return frozen


def pixel_areas_m2(grid: CubeGrid, window: Window) -> np.ndarray:
    """True areas in m² of the window's pixels: (height, 1) on a geographic grid, (height, width) else."""
    import pyproj

    crs = pyproj.CRS.from_user_input(grid.crs)
    rows, cols = window.slices
    if crs.is_geographic:
        return row_areas_m2(grid, rows)[:, np.newaxis]
    t = grid.transform
    col_idx, row_idx = np.meshgrid(np.arange(cols.start, cols.stop) + 0.5, np.arange(rows.start, rows.stop) + 0.5)
    x, y = t @ (col_idx, row_idx)
    lon, lat = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(x, y)
    factors = pyproj.Proj(crs).get_factors(lon, lat)
    return abs(t.a * t.e - t.b * t.d) / np.asarray(factors.areal_scale)


# ---- regions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionLayer:
    """A polygon layer and the column naming its regions (None: guess a usual one)."""

    path: str
    name_column: str | None = None

    @property
    def name(self) -> str:
        return Path(self.path).stem


@dataclass(frozen=True)
class Region:
    layer: str
    region_id: str
    name: str
    geometry: shapely.Geometry | None  # in the cube's CRS; None: the whole grid


def parse_layer(text: str) -> RegionLayer:
    """`FILE` or `FILE:COLUMN` (the column naming the regions) as a RegionLayer."""
    path, _, column = text.partition(":") if not Path(text).exists() else (text, "", "")
    return RegionLayer(path, column or None)


def read_regions(layer: RegionLayer, crs: str) -> list[Region]:
    """The polygons of a layer in the cube's CRS, each with an id and a name."""
    import geopandas as gpd

    try:
        frame = gpd.read_file(layer.path)
    except Exception as exc:  # pyogrio's DataSourceError and friends
        raise InputError(f"cannot read region layer {layer.path}: {exc}") from None
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    kinds = set(frame.geometry.geom_type)
    if frame.empty or not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"region layer {layer.path} holds {sorted(kinds) or 'no geometries'}: give polygons")
    if frame.crs is None:
        raise InputError(f"region layer {layer.path} has no CRS: save it with one (e.g. EPSG:4326)")
    frame = frame.to_crs(crs)
    column = layer.name_column or _name_column(frame.columns)
    if column is not None and column not in frame.columns:
        raise InputError(f"region layer {layer.path} has no column {column!r}; its columns are {list(frame.columns)[:12]}")
    id_column = "id" if "id" in frame.columns else None
    regions = []
    for n, (_, rec) in enumerate(frame.iterrows()):
        region_id = (_text(rec[id_column]) if id_column else "") or str(n)
        name = (_text(rec[column]) if column else "") or region_id
        regions.append(Region(layer.name, region_id, name, rec.geometry))
    return regions


def _name_column(columns: Sequence[str]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    return next((lowered[n] for n in _NAME_COLUMNS if n in lowered), None)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def region_windows(region: Region, grid: CubeGrid, chunk: int) -> Iterator[Window]:
    """Chunk-sized windows covering the region's bounds on the grid (none when it misses the grid)."""
    if region.geometry is None:
        yield from chunk_windows(grid, chunk)
        return
    bounds = bounds_window(region.geometry.bounds, grid)
    if bounds is not None:
        yield from chunk_windows(grid, chunk, within=bounds)


def region_mask(region: Region, grid: CubeGrid, window: Window) -> np.ndarray:
    """Pixels of the window whose centre lies inside the region."""
    from rasterio.features import geometry_mask

    if region.geometry is None:
        return np.ones((window.height, window.width), dtype=bool)
    return ~geometry_mask([region.geometry], out_shape=(window.height, window.width),
                          transform=window_transform(window, grid))


# ---- areas --------------------------------------------------------------------------------------


def region_areas(cube: ClassCube, region: Region, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """(area_m2, pixels), each (year, 256): the area and pixel count of every class value in the region."""
    years = len(cube.grid.years)
    area = np.zeros((years, 256), dtype=np.float64)
    pixels = np.zeros((years, 256), dtype=np.int64)
    for window in region_windows(region, cube.grid, chunk):
        mask = region_mask(region, cube.grid, window)
        if not mask.any():
            continue
        classes = cube.read(window)
        weights = np.broadcast_to(pixel_areas_m2(cube.grid, window), mask.shape)[mask]
        for t in range(years):
            values = classes[t][mask]
            area[t] += np.bincount(values, weights=weights, minlength=256)
            pixels[t] += np.bincount(values, minlength=256)
    return area, pixels


def area_rows(region: Region, years: Sequence[int], area: np.ndarray, pixels: np.ndarray,
              synthetic: bool) -> list[dict[str, Any]]:
    """Table rows for every mining class present in the region in any year (zeros for the other years)."""
    present = [int(v) for v in _MINING_VALUES if pixels[:, v].any()]
    rows = []
    for value in present:
        levels = _levels(value)
        for t, year in enumerate(years):
            rows.append({"layer": region.layer, "region_id": region.region_id, "region": region.name,
                         "year": int(year), "class_id": value, **levels, "pixels": int(pixels[t, value]),
                         "area_ha": float(area[t, value] / M2_PER_HA), "synthetic": synthetic})
    return rows


def _levels(value: int) -> dict[str, str]:
    if value == MINING:
        return {"level_1": "Mineração", "level_2": "", "level_3": "Mineração (sem substância)"}
    mining_class = CLASSES[value]
    return {"level_1": mining_class.level_1, "level_2": mining_class.level_2, "level_3": mining_class.level_3}


@dataclass(frozen=True)
class StatsSummary:
    out: str
    regions: int
    rows: int
    figures: int


def mining_stats(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    layers: Sequence[RegionLayer] = (),
    *,
    figures: bool = True,
    overwrite: bool = False,
) -> StatsSummary:
    """Write `mining_area.csv`/`.parquet` and a trend figure per region with mining into `out`."""
    import pandas as pd

    cube = open_class_cube(src)
    target = Path(out)
    if target.exists() and not overwrite:
        raise InputError(f"{target} exists and won't be overwritten without --overwrite")
    synthetic = bool(cube.attrs.get("synthetic", False))
    regions = [Region("grid", "all", "all", None)]
    for layer in layers:
        regions += read_regions(layer, cube.grid.crs)
    rows = []
    for region in progress(regions, len(regions), "measuring regions"):
        area, pixels = region_areas(cube, region, max(cube.chunks))
        rows += area_rows(region, cube.grid.years, area, pixels, synthetic)
    table = pd.DataFrame(rows, columns=list(AREA_COLUMNS))
    written = 0
    with atomic_dir(target) as tmp:
        tmp.mkdir()
        table.to_csv(tmp / "mining_area.csv", index=False, encoding="utf-8", lineterminator="\n")
        table.to_parquet(tmp / "mining_area.parquet", index=False)
        if figures:
            written = write_trend_figures(tmp / "figures", table)
        meta = {"cube": str(src), "layers": [layer.path for layer in layers], "synthetic": synthetic,
                "pixel_area": "per row on the CRS's ellipsoid (pyproj.Geod)",
                "method": "MapBiomas mining ATBD, Col. 9, Table 3 class_id; areas in hectares"}
        (tmp / "stats.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("mining areas", extra={"out": str(target), "regions": len(regions), "rows": len(table)})
    return StatsSummary(str(target), len(regions), len(table), written)


def write_trend_figures(folder: Path, table: pd.DataFrame) -> int:
    """One PNG per region with mining: hectares per year, one line per class and their total."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = 0
    for (layer, region_id, name), group in table.groupby(["layer", "region_id", "region"], sort=False):
        if not group["area_ha"].any():
            continue
        path = folder / _slug(layer) / f"{_slug(name)}-{_slug(region_id)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(7, 4))
        try:
            by_class = group.pivot_table(index="year", columns="class_id", values="area_ha", aggfunc="sum")
            for class_id in by_class.columns:
                ax.plot(by_class.index, by_class[class_id], marker=".", label=_legend(int(class_id)))
            if len(by_class.columns) > 1:
                ax.plot(by_class.index, by_class.sum(axis=1), color="black", linewidth=2, label="all mining")
            synthetic = "SYNTHETIC data — " if group["synthetic"].any() else ""
            ax.set_title(f"{synthetic}mining area in {name} ({layer})", fontsize=10)
            ax.set_xlabel("year")
            ax.set_ylabel("hectares")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(path, dpi=90)
        finally:
            plt.close(fig)
        count += 1
    return count


def _legend(class_id: int) -> str:
    if class_id == MINING:
        return "30 mining (no substance)"
    mining_class = CLASSES[class_id]
    return f"{class_id} {mining_class.level_3} ({mining_class.kind})"


def _slug(text: str) -> str:
    return re.sub(r"\s+", "-", fold(text))[:60] or "region"
