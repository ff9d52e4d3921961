"""The per-scene p(mine) cell grid as a zarr v3 store that xarray, rioxarray and GDAL read.

Layout: variable `p_mine` (y, x), float32, NaN where the cell is nodata; 1-D coordinates
`x`, `y` at cell centres in the scene CRS and integer `cell_row`, `cell_col`; a CF
grid-mapping variable `spatial_ref` (the rioxarray/GDAL convention: `crs_wkt`,
`spatial_ref`, `GeoTransform`). Dataset attributes `crs` and `transform` (the cell
Affine's a, b, c, d, e, f) let a reader rebuild the grid without any geo library.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ._atomic import atomic_dir

if TYPE_CHECKING:
    import affine
    import pyproj
    import xarray as xr

#: chunk edge in cells; a 9216-px scene has 335 cells a side, so one chunk per scene
CHUNK = 512
VARIABLE = "p_mine"
_RESERVED_ATTRS = ("crs", "transform")


def write_probability_zarr(
    path: str | os.PathLike[str],
    p_mine: np.ndarray,
    *,
    cell_transform: affine.Affine,
    crs: str,
    attrs: dict[str, Any],
) -> None:
    """Write the (rows, cols) p(mine) grid to a zarr v3 store at local `path`, atomically."""
    ds = probability_dataset(p_mine, cell_transform=cell_transform, crs=crs, attrs=attrs)
    rows, cols = ds[VARIABLE].shape
    chunks = (max(1, min(CHUNK, rows)), max(1, min(CHUNK, cols)))
    with atomic_dir(path) as tmp, quiet_consolidated():
        ds.to_zarr(
            tmp, mode="w-", zarr_format=3, consolidated=True, encoding={VARIABLE: {"chunks": chunks}}
        )


@contextmanager
def quiet_consolidated() -> Iterator[None]:
    """Silence zarr's warning about consolidated metadata while writing a v3 store."""
    with warnings.catch_warnings():
        # zarr-python stores v3 consolidated metadata inside zarr.json and warns that the
        # spec has not adopted it yet; it saves a remote reader one request per array.
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        yield


def read_probability_zarr(
    path: str | os.PathLike[str],
) -> tuple[np.ndarray, affine.Affine, str, dict[str, Any]]:
    """(p_mine, cell_transform, crs, attrs) of a store `write_probability_zarr` wrote."""
    import xarray as xr
    from affine import Affine

    try:
        ds = xr.open_zarr(path)
    except FileNotFoundError as exc:
        raise InputError(f"probability store {path} does not exist: was its shard completed?") from exc
    with ds:
        attrs = dict(ds.attrs)
        if VARIABLE not in ds or any(key not in attrs for key in _RESERVED_ATTRS):
            raise InputError(f"{path} is not a minescan probability store (no {VARIABLE}/crs/transform)")
        p_mine = ds[VARIABLE].values.astype(np.float32, copy=False)
    transform = Affine(*attrs.pop("transform"))
    crs = attrs.pop("crs")
    return p_mine, transform, crs, attrs


def probability_dataset(
    p_mine: np.ndarray, *, cell_transform: affine.Affine, crs: str, attrs: dict[str, Any]
) -> xr.Dataset:
    """The xarray Dataset `write_probability_zarr` stores (pure: validates, builds, no I/O)."""
    import xarray as xr

    grid = _check_grid(p_mine)
    extra = _check_attrs(attrs)
    rows, cols = grid.shape
    coords, georef = grid_coords(rows, cols, cell_transform, crs)
    return xr.Dataset(
        {
            VARIABLE: (
                ("y", "x"),
                grid,
                {"long_name": "probability of a surface mine", "units": "1", "grid_mapping": "spatial_ref"},
            )
        },
        coords={
            **coords,
            "cell_row": ("y", np.arange(rows, dtype=np.int32), {"long_name": "discovery cell row"}),
            "cell_col": ("x", np.arange(cols, dtype=np.int32), {"long_name": "discovery cell column"}),
        },
        attrs={**georef, **extra},
    )


def grid_coords(
    rows: int, cols: int, transform: affine.Affine, crs: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(coords, attrs) that georeference a (y, x) grid in a zarr store: cell-centre `x`/`y`
    and the `spatial_ref` grid mapping; attrs `crs` and `transform` (a, b, c, d, e, f).

    Raises `InputError` for a rotated grid or a CRS pyproj does not know.
    """
    _check_north_up(transform)
    crs_obj = _parse_crs(crs)
    t = transform
    x_attrs, y_attrs = _axis_attrs(crs_obj)
    coords = {
        # cell centres: (col + 0.5, row + 0.5) through the transform
        "x": ("x", t.c + t.a * (np.arange(cols) + 0.5), x_attrs),
        "y": ("y", t.f + t.e * (np.arange(rows) + 0.5), y_attrs),
        "spatial_ref": ((), np.int32(0), _grid_mapping_attrs(crs_obj, t)),
    }
    return coords, {"crs": _crs_text(crs_obj), "transform": [t.a, t.b, t.c, t.d, t.e, t.f]}


def _check_grid(p_mine: np.ndarray) -> np.ndarray:
    grid = np.asarray(p_mine)
    if grid.ndim != 2 or not np.issubdtype(grid.dtype, np.floating):
        raise InputError(f"p_mine must be a 2-D float grid, got {grid.dtype} of shape {grid.shape}")
    grid = grid.astype(np.float32, copy=False)
    finite = grid[~np.isnan(grid)]
    if finite.size and (not np.isfinite(finite).all() or finite.min() < 0 or finite.max() > 1):
        raise InputError("p_mine holds values outside [0, 1]: pass probabilities, NaN for nodata")
    return grid


def _check_north_up(t: affine.Affine) -> None:
    # 1-D x/y coordinates can only describe a grid whose rows and columns follow the axes.
    if t.b != 0 or t.d != 0 or t.a == 0 or t.e == 0:
        raise InputError(f"cell_transform {tuple(t)[:6]} is rotated or degenerate: use a north-up grid")


def _check_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    clash = [key for key in _RESERVED_ATTRS if key in attrs]
    if clash:
        raise InputError(f"attrs may not set {clash}: pass them as crs=/cell_transform=")
    try:
        # a round trip gives plain lists and dicts, exactly what a reader will get back
        return json.loads(json.dumps(attrs, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InputError(f"attrs must be JSON-serialisable (zarr stores them as JSON): {exc}") from exc


def _parse_crs(crs: str) -> pyproj.CRS:
    import pyproj

    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise InputError(f"crs {crs!r} is not a CRS pyproj knows: pass 'EPSG:<code>' or WKT") from exc


def _crs_text(crs: pyproj.CRS) -> str:
    """'EPSG:<code>' when the CRS is exactly an EPSG one, else its WKT2."""
    authority = crs.to_authority(min_confidence=100)
    if authority is not None:
        return ":".join(authority)
    return crs.to_wkt()


def _axis_attrs(crs: pyproj.CRS) -> tuple[dict[str, str], dict[str, str]]:
    if crs.is_geographic:
        return (
            {"standard_name": "longitude", "units": "degrees_east", "axis": "X"},
            {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"},
        )
    unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
    return (
        {"standard_name": "projection_x_coordinate", "units": unit, "axis": "X"},
        {"standard_name": "projection_y_coordinate", "units": unit, "axis": "Y"},
    )


def _grid_mapping_attrs(crs: pyproj.CRS, t: affine.Affine) -> dict[str, Any]:
    wkt = crs.to_wkt()
    return {
        **crs.to_cf(),
        "crs_wkt": wkt,
        "spatial_ref": wkt,
        # GDAL's order: x origin, x pixel size, row rotation, y origin, column rotation, y size
        "GeoTransform": " ".join(repr(float(v)) for v in t.to_gdal()),
    }
