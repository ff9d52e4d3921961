"""The series' two zarr v3 stores, written year by year and published whole.

Feature cube: variable `features` (year, y, x, feature), float32, NaN where the year's
mosaic had no observation; coordinates `year` (int), `feature` (names), cell-centre `x`/`y`
and the CF grid mapping `spatial_ref`. Class cube: variable `class` (year, y, x), uint8,
`NOT_MINING` 0, `MINING` 30 (the MapBiomas class id) and `NODATA` 255; the same coordinates
less `feature`. Both carry dataset attributes `crs` and `transform` (a, b, c, d, e, f), as
the scan's probability store does, so a reader can rebuild the grid without a geo library.

A store is built year by year in a hidden sibling (one chunk row of years in memory at a
time) and renamed into place only when every year is written.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..outputs import atomic_dir, grid_coords

if TYPE_CHECKING:
    import xarray as xr
    from affine import Affine

NOT_MINING = 0
MINING = 30
NODATA = 255
FEATURES_VAR = "features"
CLASS_VAR = "class"
#: spatial chunk edge; one year per chunk, so a year reads without touching the others
CHUNK = 512


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: its size, affine transform and CRS ('EPSG:…' or WKT)."""

    rows: int
    cols: int
    transform: Affine
    crs: str

    def describe(self) -> str:
        return f"{self.rows}×{self.cols} px, {self.crs}, transform {tuple(self.transform)[:6]}"


@dataclass(frozen=True)
class FeatureCube:
    """An opened feature cube: its axes and grid; `year_features` reads one year."""

    path: str
    years: tuple[int, ...]
    features: tuple[str, ...]
    grid: Grid
    attrs: dict[str, Any] = field(default_factory=dict)

    def feature_indexes(self, wanted: Sequence[str]) -> list[int]:
        missing = [f for f in wanted if f not in self.features]
        if missing:
            raise InputError(
                f"the cube {self.path} has features {list(self.features)} but {missing} are "
                "needed: rebuild the cube from mosaics with those bands or use a matching model"
            )
        return [self.features.index(f) for f in wanted]

    def year_features(self, year: int, wanted: Sequence[str] | None = None) -> np.ndarray:
        """(rows, cols, features) float32 of one year, the `wanted` features in that order."""
        index = self.feature_indexes(wanted if wanted is not None else self.features)
        with _open(self.path) as ds:
            values = ds[FEATURES_VAR].isel(year=self.years.index(year)).values
        return np.ascontiguousarray(values[..., index], dtype=np.float32)


@dataclass(frozen=True)
class ClassCube:
    """A class cube in memory: (year, y, x) uint8 classes with their years and grid."""

    classes: np.ndarray
    years: tuple[int, ...]
    grid: Grid
    attrs: dict[str, Any] = field(default_factory=dict)


def write_feature_cube(path: str | os.PathLike[str], years: Sequence[int], features: Sequence[str],
                       arrays: Iterable[np.ndarray], grid: Grid, attrs: dict[str, Any]) -> None:
    """Stream (rows, cols, features) float32 arrays, one per year, into a feature cube."""
    layout = _Layout(FEATURES_VAR, np.float32, tuple(features), {
        "long_name": "Landsat annual mosaic features", "grid_mapping": "spatial_ref"})
    _write_years(path, layout, years, arrays, grid, attrs)


def write_class_cube(path: str | os.PathLike[str], years: Sequence[int],
                     arrays: Iterable[np.ndarray], grid: Grid, attrs: dict[str, Any]) -> None:
    """Stream (rows, cols) uint8 class maps, one per year (or a (year, y, x) array), into a
    class cube."""
    layout = _Layout(CLASS_VAR, np.uint8, None, {
        "long_name": "mining class (MapBiomas)", "grid_mapping": "spatial_ref",
        "flag_values": [NOT_MINING, MINING, NODATA], "flag_meanings": "not_mining mining nodata"})
    _write_years(path, layout, years, arrays, grid, attrs)


def open_feature_cube(path: str | os.PathLike[str]) -> FeatureCube:
    """A feature cube's axes and grid (no pixels are read)."""
    with _open(path) as ds:
        if FEATURES_VAR not in ds or ds[FEATURES_VAR].dims != ("year", "y", "x", "feature"):
            raise InputError(f"{path} is not a minescan feature cube (no {FEATURES_VAR}(year, y, x, feature)); "
                             "build one with `minescan series cube`")
        grid, attrs = _grid(ds, path)
        return FeatureCube(str(path), _years(ds), tuple(str(f) for f in ds["feature"].values),
                           grid, attrs)


def read_class_cube(path: str | os.PathLike[str]) -> ClassCube:
    """A whole class cube in memory (the filters stream large ones with dask instead)."""
    with _open(path) as ds:
        if CLASS_VAR not in ds or ds[CLASS_VAR].dims != ("year", "y", "x"):
            raise InputError(f"{path} is not a minescan class cube (no {CLASS_VAR}(year, y, x))")
        grid, attrs = _grid(ds, path)
        classes = ds[CLASS_VAR].values.astype(np.uint8, copy=False)
        return ClassCube(classes, _years(ds), grid, attrs)


@contextmanager
def _open(path: str | os.PathLike[str]) -> Iterator[xr.Dataset]:
    import xarray as xr

    try:
        ds = xr.open_zarr(path, mask_and_scale=False)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise InputError(f"cannot open the zarr store {path}: {exc}") from None
    with ds:
        yield ds


def _years(ds: xr.Dataset) -> tuple[int, ...]:
    return tuple(int(y) for y in ds["year"].values)


def _grid(ds: xr.Dataset, path: str | os.PathLike[str]) -> tuple[Grid, dict[str, Any]]:
    from affine import Affine

    attrs = dict(ds.attrs)
    if "crs" not in attrs or "transform" not in attrs:
        raise InputError(f"{path} has no crs/transform attributes: it was not written by minescan")
    grid = Grid(int(ds.sizes["y"]), int(ds.sizes["x"]), Affine(*attrs.pop("transform")[:6]),
                attrs.pop("crs"))
    return grid, attrs


def _check_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    if "crs" in attrs or "transform" in attrs:
        raise InputError("attrs may not set crs or transform: they come from the grid")
    try:
        return json.loads(json.dumps(attrs, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InputError(f"attrs must be JSON-serialisable (zarr stores them as JSON): {exc}") from exc


@dataclass(frozen=True)
class _Layout:
    """One store's variable: name, dtype, feature names (None: no feature axis), attributes."""

    name: str
    dtype: type
    features: tuple[str, ...] | None
    attrs: dict[str, Any]

    @property
    def dims(self) -> tuple[str, ...]:
        return ("year", "y", "x") if self.features is None else ("year", "y", "x", "feature")

    def year_shape(self, grid: Grid) -> tuple[int, ...]:
        return (grid.rows, grid.cols) + (() if self.features is None else (len(self.features),))


def _write_years(path: str | os.PathLike[str], layout: _Layout, years: Sequence[int],
                 arrays: Iterable[np.ndarray], grid: Grid, attrs: dict[str, Any]) -> None:
    import xarray as xr

    years = [int(y) for y in years]
    if not years or len(set(years)) != len(years) or years != sorted(years):
        raise InputError(f"years must be distinct and increasing, got {years}")
    coords, georef = grid_coords(grid.rows, grid.cols, grid.transform, grid.crs)
    if layout.features is not None:
        coords["feature"] = ("feature", np.asarray(layout.features, dtype=object))
    ds_attrs = {**georef, **_check_attrs(attrs)}
    shape = layout.year_shape(grid)
    chunks = (1, min(CHUNK, grid.rows), min(CHUNK, grid.cols), *shape[2:])
    with atomic_dir(path) as tmp, warnings.catch_warnings():
        # zarr-python keeps v3 consolidated metadata in zarr.json and warns that the spec
        # has not adopted it yet; it saves a remote reader one request per array.
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        for i, (year, array) in enumerate(zip(years, arrays, strict=True)):
            array = np.asarray(array)
            if array.shape != shape:
                raise InputError(f"year {year}: array of shape {array.shape}, expected {shape}")
            ds = xr.Dataset(
                {layout.name: (layout.dims, array.astype(layout.dtype, copy=False)[None], layout.attrs)},
                coords={"year": ("year", np.array([year], np.int32)), **coords},
                attrs=ds_attrs,
            )
            if i == 0:
                ds.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=True,
                           encoding={layout.name: {"chunks": chunks}})
            else:
                # the static coordinates are already in the store: append only the year
                ds.drop_vars(list(coords)).to_zarr(tmp, append_dim="year", consolidated=True)
