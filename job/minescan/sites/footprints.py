"""Site footprints: the dissolved union of the ground squares of a site's detection cells.

A detection cell stands for the 27 × 27-px stride square around its centre pixel (the
cells of one scene tile the scene without gaps or overlap; `scan.scene.cell_transform`).
Cells are dissolved on their own integer lattice, so shared edges cancel exactly and no
sliver survives:

* cells of scenes aligned to the run's grid (they carry `global_row`/`global_col`) lie on
  one national lattice, whatever scene they came from, so a site that crosses a scene
  border is one polygon;
* cells of other scenes (hand-made runs) lie on their own scene's lattice, in that
  scene's CRS; their polygons are densified to one vertex per cell corner before they
  are reprojected to EPSG:4326.

GDAL's polygonizer (`rasterio.features.shapes`, 4-connected) traces each lattice tile;
parts of a site that lie in several tiles are unioned in lattice units (exact integers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..batch.grid import S2_GRID
from ..errors import InputError
from ..scan import geometry

if TYPE_CHECKING:
    import pandas as pd
    from affine import Affine

#: lattice tile edge for polygonizing (cells): 4 MiB of int32 labels at most
TILE = 1024
#: pixels from a national cell's first pixel to its stride square's first pixel
_SQUARE_OFFSET_PX = geometry.CENTRE_OFFSET + 0.5 - geometry.STRIDE / 2


@dataclass(frozen=True, slots=True)
class SceneGrid:
    """Where one scene's output cells lie on the ground (from its shard's `_SUCCESS.json`)."""

    cell_shape: tuple[int, int]
    #: CRS of the scene (WKT or anything pyproj reads)
    crs: str
    #: the scene's pixel affine, rasterio order a, b, c, d, e, f
    transform: tuple[float, float, float, float, float, float]
    #: the run grid's cell of local cell (0, 0); None when the scene is not on the grid
    global_offset: tuple[int, int] | None = None

    @classmethod
    def from_success(cls, record: Mapping[str, Any]) -> SceneGrid:
        offset = record.get("global_offset")
        return cls(
            cell_shape=(int(record["cell_shape"][0]), int(record["cell_shape"][1])),
            crs=str(record["crs"]),
            transform=tuple(float(v) for v in record["transform"][:6]),  # type: ignore[arg-type]
            global_offset=(int(offset[0]), int(offset[1])) if offset else None,
        )

    def cell_affine(self) -> Affine:
        """Scene CRS coordinates of cell-lattice coordinates (col, row)."""
        from affine import Affine

        from ..scan.scene import cell_transform

        return cell_transform(Affine(*self.transform))


def national_cells(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the national Sentinel-2 grid's stride square holding each point.

    On that grid a detection's centre lies in the middle of its own square, so this is the
    detection's `global_row`/`global_col` for every scene acquired on the national grid,
    and a place-derived cell for any other scene.
    """
    g = S2_GRID
    row = np.floor((g.pixel_row(np.asarray(lat, np.float64)) - _SQUARE_OFFSET_PX) / geometry.STRIDE)
    col = np.floor((g.pixel_col(np.asarray(lon, np.float64)) - _SQUARE_OFFSET_PX) / geometry.STRIDE)
    return row.astype(np.int64), col.astype(np.int64)


@dataclass(frozen=True)
class _Lattice:
    affine: Affine
    crs: str
    geographic: bool


def _is_wgs84(crs: str) -> bool:
    from pyproj import CRS

    return CRS.from_user_input(crs).equals(CRS.from_epsg(4326), ignore_axis_order=True)


def _lattices(cells: pd.DataFrame, scenes: Mapping[str, SceneGrid]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[_Lattice]]:
    """Per cell: lattice number, x and y on it; and the lattices (national first)."""
    from affine import Affine

    missing = sorted(set(cells["scene_id"]) - set(scenes))
    if missing:
        raise InputError(f"no cell grid for scenes {missing[:5]}: their shards' _SUCCESS.json must be read")
    on_grid = cells["global_row"].notna().to_numpy() & cells["scene_id"].map(
        lambda s: scenes[s].global_offset is not None).to_numpy(bool)
    lattice = np.full(len(cells), -1, np.int64)
    x = cells["cell_col"].to_numpy(np.int64).copy()
    y = cells["cell_row"].to_numpy(np.int64).copy()
    lattices: list[_Lattice] = []
    if on_grid.any():
        # one national lattice: every aligned scene maps to it; the first scene's affine
        # places it (all aligned scenes agree to float precision)
        first = scenes[min(cells.loc[on_grid, "scene_id"])]
        r0, c0 = first.global_offset  # type: ignore[misc]
        affine = first.cell_affine() @ Affine.translation(-c0, -r0)
        lattices.append(_Lattice(affine, first.crs, _is_wgs84(first.crs)))
        lattice[on_grid] = 0
        x[on_grid] = cells.loc[on_grid, "global_col"].to_numpy(np.int64)
        y[on_grid] = cells.loc[on_grid, "global_row"].to_numpy(np.int64)
    for scene_id in sorted(set(cells.loc[~on_grid, "scene_id"])):
        grid = scenes[scene_id]
        lattice[(~on_grid) & (cells["scene_id"] == scene_id).to_numpy()] = len(lattices)
        lattices.append(_Lattice(grid.cell_affine(), grid.crs, _is_wgs84(grid.crs)))
    return lattice, x, y, lattices


def _polygonize(x: np.ndarray, y: np.ndarray, site: np.ndarray) -> dict[int, Any]:
    """Site → its cells' dissolved polygon in lattice units (x = col, y = row)."""
    import shapely
    from affine import Affine
    from rasterio.features import shapes
    from shapely.geometry import shape

    parts: dict[int, list] = {}
    tile = (y // TILE) * (2**31) + (x // TILE)
    order = np.argsort(tile, kind="stable")
    bounds = np.flatnonzero(np.diff(tile[order])) + 1
    for members in np.split(order, bounds):
        tx, ty, ts = x[members], y[members], site[members]
        x0, y0 = tx.min(), ty.min()
        labels = np.zeros((ty.max() - y0 + 1, tx.max() - x0 + 1), np.int32)
        labels[ty - y0, tx - x0] = ts + 1
        for geom, value in shapes(labels, mask=labels > 0, connectivity=4,
                                  transform=Affine.translation(float(x0), float(y0))):
            parts.setdefault(int(value) - 1, []).append(shape(geom))
    return {s: p[0] if len(p) == 1 else shapely.union_all(p) for s, p in parts.items()}


def _to_lonlat(geoms: list, lattice: _Lattice) -> list:
    import shapely

    if not lattice.geographic:
        # a straight edge in the scene's CRS is not straight in lon/lat: keep every corner
        geoms = list(shapely.segmentize(np.asarray(geoms, dtype=object), 1.0))
    a = lattice.affine

    def project(xy: np.ndarray) -> np.ndarray:
        px = a.a * xy[:, 0] + a.b * xy[:, 1] + a.c
        py = a.d * xy[:, 0] + a.e * xy[:, 1] + a.f
        if lattice.geographic:
            return np.column_stack([px, py])
        from pyproj import Transformer

        lon, lat = Transformer.from_crs(lattice.crs, "EPSG:4326", always_xy=True).transform(px, py)
        return np.column_stack([lon, lat])

    return list(shapely.transform(np.asarray(geoms, dtype=object), project))


def site_footprints(cells: pd.DataFrame, site: np.ndarray, n_sites: int,
                    scenes: Mapping[str, SceneGrid]) -> np.ndarray:
    """(n_sites,) lon/lat footprints of sites 0..n_sites-1 from their cells (`site` per cell)."""
    import shapely

    out = np.empty(n_sites, dtype=object)
    if n_sites == 0:
        return out
    lattice, x, y, lattices = _lattices(cells, scenes)
    pieces: dict[int, list] = {}
    for k, lat in enumerate(lattices):
        on = lattice == k
        by_site = _polygonize(x[on], y[on], site[on])
        keys = sorted(by_site)
        for s, geom in zip(keys, _to_lonlat([by_site[s] for s in keys], lat), strict=True):
            pieces.setdefault(s, []).append(geom)
    for s, geoms in pieces.items():
        out[s] = geoms[0] if len(geoms) == 1 else shapely.union_all(geoms)
    return out


def coverage(scenes: Mapping[str, SceneGrid]) -> Any:
    """The lon/lat area the scenes' output cells cover (where a mine could be detected)."""
    import shapely
    from shapely.geometry import box

    squares = []
    for grid in scenes.values():
        rows, cols = grid.cell_shape
        lattice = _Lattice(grid.cell_affine(), grid.crs, _is_wgs84(grid.crs))
        squares.extend(_to_lonlat([box(0, 0, cols, rows)], lattice))
    return shapely.union_all(squares) if squares else shapely.Polygon()

