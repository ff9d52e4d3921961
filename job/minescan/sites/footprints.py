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

`outline` traces every site's cells at once, on integers, so shared edges match exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..batch.grid import S2_GRID
from ..errors import InputError
from ..scan import geometry
from . import outline

if TYPE_CHECKING:
    import pandas as pd
    from affine import Affine

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
    import pandas as pd
    from affine import Affine

    code, names = pd.factorize(cells["scene_id"], sort=True)
    missing = [name for name in names if name not in scenes]
    if missing:
        raise InputError(f"no cell grid for scenes {missing[:5]}: their shards' _SUCCESS.json must be read")
    grids = [scenes[name] for name in names]
    aligned = np.array([grid.global_offset is not None for grid in grids], bool)
    on_grid = cells["global_row"].notna().to_numpy() & aligned[code]
    lattice = np.full(len(cells), -1, np.int64)
    x = cells["cell_col"].to_numpy(np.int64).copy()
    y = cells["cell_row"].to_numpy(np.int64).copy()
    lattices: list[_Lattice] = []
    if on_grid.any():
        # one national lattice: every aligned scene maps to it; the first scene's affine
        # places it (all aligned scenes agree to float precision)
        first = grids[int(code[on_grid].min())]
        r0, c0 = first.global_offset  # type: ignore[misc]
        affine = first.cell_affine() @ Affine.translation(-c0, -r0)
        lattices.append(_Lattice(affine, first.crs, _is_wgs84(first.crs)))
        lattice[on_grid] = 0
        x[on_grid] = cells["global_col"].to_numpy()[on_grid].astype(np.int64)
        y[on_grid] = cells["global_row"].to_numpy()[on_grid].astype(np.int64)
    for k in np.unique(code[~on_grid]):
        lattice[(~on_grid) & (code == k)] = len(lattices)
        lattices.append(_Lattice(grids[k].cell_affine(), grids[k].crs, _is_wgs84(grids[k].crs)))
    return lattice, x, y, lattices


def _projector(lattice: _Lattice) -> Callable[[np.ndarray], np.ndarray]:
    """(n, 2) lattice x, y → lon, lat."""
    a = lattice.affine
    to_wgs84 = None
    if not lattice.geographic:
        from pyproj import Transformer

        to_wgs84 = Transformer.from_crs(lattice.crs, "EPSG:4326", always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        px = a.a * xy[:, 0] + a.b * xy[:, 1] + a.c
        py = a.d * xy[:, 0] + a.e * xy[:, 1] + a.f
        if to_wgs84 is None:
            return np.column_stack([px, py])
        return np.column_stack(to_wgs84.transform(px, py))

    return project


def site_footprints(cells: pd.DataFrame, site: np.ndarray, n_sites: int,
                    scenes: Mapping[str, SceneGrid]) -> np.ndarray:
    """(n_sites,) lon/lat footprints of sites 0..n_sites-1 from their cells (`site` per cell)."""
    import shapely

    out = np.full(n_sites, None, dtype=object)
    if n_sites == 0:
        return out
    lattice, x, y, lattices = _lattices(cells, scenes)
    for k, lat in enumerate(lattices):
        on = lattice == k
        # a straight edge in a projected scene's CRS is not straight in lon/lat: keep every corner
        shapes = outline.geometries(x[on], y[on], site[on], n_sites, _projector(lat), keep_corners=not lat.geographic)
        here, before = ~shapely.is_missing(shapes), ~shapely.is_missing(out)
        both = np.flatnonzero(here & before)
        if len(both):  # a site on two lattices (unaligned scenes beside aligned ones)
            shapes[both] = shapely.union_all(np.stack([out[both], shapes[both]]), axis=0)
        out[here] = shapes[here]
    return out


def coverage(scenes: Mapping[str, SceneGrid]) -> Any:
    """The lon/lat area the scenes' output cells cover (where a mine could be detected)."""
    import shapely
    from shapely.geometry import box

    squares = []
    for grid in scenes.values():
        rows, cols = grid.cell_shape
        lattice = _Lattice(grid.cell_affine(), grid.crs, _is_wgs84(grid.crs))
        edge = shapely.segmentize(box(0, 0, cols, rows), 1.0) if not lattice.geographic else box(0, 0, cols, rows)
        squares.append(shapely.transform(edge, _projector(lattice)))
    return shapely.union_all(squares) if squares else shapely.Polygon()

