"""Class cubes: the annual mining maps of a region as one zarr v3 store that xarray reads.

Layout (the probability store's conventions, `minescan.outputs.probability`): variable
`class` (year, y, x) uint8 with values `NOT_MINING` 0, `MINING` 30 or a Table 3 class id,
and `NODATA` 255 (declared in `flag_values`/`flag_meanings`, not as a fill value, so xarray
keeps the integers); an optional `year_mask` (year, y, x) int16, the calendar year each value
came from after gap-filling; coordinates `year`, `x`, `y` (pixel centres) and the CF grid
mapping `spatial_ref`; dataset attributes `crs` and `transform` (the pixel Affine's a..f).
Each chunk holds every year of a (y, x) window, the layout the time filters need.

A cube is written whole (`write_class_cube`, from arrays in memory) or as a template whose
chunks workers fill one aligned window at a time (`create_class_cube` + `write_window`), the
xarray-beam pattern, always inside a hidden temp directory that is renamed into place.
Annual class GeoTIFFs (one file per year) are stacked by `stack_class_geotiffs`, which
refuses years whose grids differ.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..outputs._atomic import atomic_dir
from ..outputs.probability import _check_attrs, grid_coords, quiet_consolidated
from .classes import CLASS_IDS
from .filters import MINING, NODATA, NOT_MINING, check_years

if TYPE_CHECKING:
    import xarray as xr
    import zarr
    from affine import Affine

VARIABLE = "class"
YEAR_MASK = "year_mask"
#: (y, x) chunk edge in pixels: 20 years × 512² is 5 MiB of uint8 per chunk
CHUNK = 512
_RESERVED_ATTRS = ("crs", "transform")
#: True at each uint8 value a coded cube may hold: indexing it checks a cube without bincount's int64 copy
_CODED = np.zeros(256, dtype=bool)
_CODED[[NOT_MINING, MINING, NODATA, *CLASS_IDS]] = True


@dataclass(frozen=True)
class CubeGrid:
    """Where a class cube lies: its years and the pixel grid every year shares."""

    years: tuple[int, ...]
    height: int
    width: int
    transform: Affine
    crs: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.years), self.height, self.width)


@dataclass(frozen=True)
class Window:
    """A (y, x) window of a cube's grid, in pixels: rows [row_off, row_off + height)."""

    row_off: int
    col_off: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return (slice(self.row_off, self.row_off + self.height), slice(self.col_off, self.col_off + self.width))

    def grown(self, halo: int, grid: CubeGrid) -> Window:
        """This window grown by `halo` pixels on every side, clipped to the grid."""
        top, left = max(0, self.row_off - halo), max(0, self.col_off - halo)
        bottom = min(grid.height, self.row_off + self.height + halo)
        right = min(grid.width, self.col_off + self.width + halo)
        return Window(top, left, bottom - top, right - left)

    def within(self, outer: Window) -> tuple[slice, slice]:
        """Slices selecting this window from an array holding `outer`."""
        top, left = self.row_off - outer.row_off, self.col_off - outer.col_off
        return (slice(top, top + self.height), slice(left, left + self.width))


def bounds_window(bounds: tuple[float, float, float, float], grid: CubeGrid, pad: int = 0) -> Window | None:
    """The pixels of `grid` covering `bounds` (minx, miny, maxx, maxy in the grid's CRS) and `pad`
    more on every side, clipped to the grid; None when nothing of the grid is left."""
    minx, miny, maxx, maxy = bounds
    cols, rows = ~grid.transform @ (np.array([minx, maxx, minx, maxx]), np.array([miny, miny, maxy, maxy]))
    top, bottom = max(0, math.floor(rows.min()) - pad), min(grid.height, math.ceil(rows.max()) + pad)
    left, right = max(0, math.floor(cols.min()) - pad), min(grid.width, math.ceil(cols.max()) + pad)
    if top >= bottom or left >= right:
        return None
    return Window(top, left, bottom - top, right - left)


def window_transform(window: Window, grid: CubeGrid) -> Affine:
    """The Affine of the window's own pixel grid."""
    from affine import Affine

    return grid.transform @ Affine.translation(window.col_off, window.row_off)


def chunk_windows(grid: CubeGrid, chunk: int, within: Window | None = None) -> Iterator[Window]:
    """The grid (or its window `within`) cut into `chunk`-pixel squares, smaller at the far edges."""
    area = within or Window(0, 0, grid.height, grid.width)
    bottom, right = area.row_off + area.height, area.col_off + area.width
    for row in range(area.row_off, bottom, chunk):
        for col in range(area.col_off, right, chunk):
            yield Window(row, col, min(chunk, bottom - row), min(chunk, right - col))


def class_cube_dataset(
    classes: Any,
    grid: CubeGrid,
    *,
    attrs: Mapping[str, Any],
    year_mask: Any | None = None,
) -> xr.Dataset:
    """The xarray Dataset of a class cube (numpy or dask arrays; pure: builds, no I/O)."""
    import xarray as xr

    if tuple(classes.shape) != grid.shape:
        raise InputError(f"classes have shape {tuple(classes.shape)} but the grid is {grid.shape}")
    coords, georef = grid_coords(grid.height, grid.width, grid.transform, grid.crs)
    extra = _check_attrs(dict(attrs))
    dims = ("year", "y", "x")
    variables = {
        VARIABLE: (
            dims,
            classes,
            {
                "long_name": "annual mining class (MapBiomas mining ATBD, Col. 9)",
                "flag_values": [NOT_MINING, MINING, NODATA],
                "flag_meanings": "not_mining mining no_data",
                "comment": "values 101-130 and 214-225 are the ATBD's Table 3 class_id",
                "grid_mapping": "spatial_ref",
            },
        )
    }
    if year_mask is not None:
        variables[YEAR_MASK] = (
            dims,
            year_mask,
            {"long_name": "calendar year each class value was taken from by gap-filling", "units": "1",
             "comment": "0 where the pixel is still no data", "grid_mapping": "spatial_ref"},
        )
    return xr.Dataset(
        variables,
        coords={"year": ("year", np.asarray(grid.years, dtype=np.int16), {"long_name": "calendar year"}), **coords},
        attrs={**georef, **extra},
    )


def _encoding(grid: CubeGrid, chunk: int, with_year_mask: bool) -> dict[str, dict[str, Any]]:
    chunks = (len(grid.years), max(1, min(chunk, grid.height)), max(1, min(chunk, grid.width)))
    names = (VARIABLE, YEAR_MASK) if with_year_mask else (VARIABLE,)
    return {name: {"chunks": chunks} for name in names}


def write_class_cube(
    path: str | os.PathLike[str],
    classes: np.ndarray,
    grid: CubeGrid,
    *,
    attrs: Mapping[str, Any] | None = None,
    year_mask: np.ndarray | None = None,
    chunk: int = CHUNK,
) -> None:
    """Write an in-memory class cube to a zarr v3 store at local `path`, atomically."""
    cube = _check_coded(classes)
    check_years(grid.years, cube.shape[0])
    ds = class_cube_dataset(cube, grid, attrs=attrs or {}, year_mask=year_mask)
    with atomic_dir(path) as tmp, quiet_consolidated():
        ds.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=True,
                   encoding=_encoding(grid, chunk, year_mask is not None))


def create_class_cube(
    path: str | os.PathLike[str],
    grid: CubeGrid,
    *,
    attrs: Mapping[str, Any],
    chunk: int,
    with_year_mask: bool,
) -> None:
    """Write a cube's metadata and coordinates only; `write_window` fills its chunks."""
    import dask.array as da

    check_years(grid.years, len(grid.years))
    encoding = _encoding(grid, chunk, with_year_mask)
    chunks = encoding[VARIABLE]["chunks"]
    lazy = da.zeros(grid.shape, dtype=np.uint8, chunks=chunks)
    mask = da.zeros(grid.shape, dtype=np.int16, chunks=chunks) if with_year_mask else None
    ds = class_cube_dataset(lazy, grid, attrs=attrs, year_mask=mask)
    with quiet_consolidated():
        ds.to_zarr(path, mode="w-", zarr_format=3, consolidated=True, compute=False, encoding=encoding)


def write_window(path: str | os.PathLike[str], window: Window, arrays: Mapping[str, np.ndarray]) -> None:
    """Write (year, y, x) blocks into the cube at `path` at `window`; it must align with chunks."""
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    for name, block in arrays.items():
        target = group[name]
        chunk_y, chunk_x = target.chunks[1:]
        if window.row_off % chunk_y or window.col_off % chunk_x:
            raise ValueError(f"window {window} does not start on a {chunk_y}×{chunk_x} chunk of {name}")
        target[(slice(None), *window.slices)] = block


def update_attrs(path: str | os.PathLike[str], attrs: Mapping[str, Any]) -> None:
    """Add dataset attributes to the cube at `path` (a writer's summary) and reconsolidate."""
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    group.attrs.update(_check_attrs(dict(attrs)))
    with quiet_consolidated():
        zarr.consolidate_metadata(str(path))


@dataclass(frozen=True)
class ClassCube:
    """An opened class cube: its grid and attributes; pixels are read window by window."""

    path: str
    grid: CubeGrid
    attrs: Mapping[str, Any]
    chunks: tuple[int, int]

    def _array(self, name: str) -> zarr.Array:
        import zarr

        return zarr.open_group(self.path, mode="r")[name]

    def read(self, window: Window | None = None, name: str = VARIABLE) -> np.ndarray:
        """The (year, y, x) values of `name` inside `window` (the whole grid by default)."""
        array = self._array(name)
        return array[:] if window is None else array[(slice(None), *window.slices)]

    def read_year(self, index: int, name: str = VARIABLE) -> np.ndarray:
        """One year's (y, x) map, by its position in `grid.years`."""
        return self._array(name)[index]


def open_class_cube(path: str | os.PathLike[str]) -> ClassCube:
    """Open a class cube for reading, checking what the filters rely on; InputError if it is not one."""
    import zarr
    from affine import Affine

    try:
        group = zarr.open_group(str(path), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise InputError(f"class cube {path} does not exist or is not a zarr group") from exc
    attrs = dict(group.attrs)
    if VARIABLE not in group or "year" not in group or any(k not in attrs for k in _RESERVED_ATTRS):
        raise InputError(f"{path} is not a minescan class cube: it needs `{VARIABLE}`, `year`, crs and transform")
    array = group[VARIABLE]
    dims = tuple(array.metadata.dimension_names or ())
    if dims != ("year", "y", "x") or array.dtype != np.uint8:
        raise InputError(f"{path}: `{VARIABLE}` must be uint8 with dims (year, y, x); got {array.dtype} {dims}")
    years = tuple(int(y) for y in check_years(group["year"][:], array.shape[0]))
    transform = Affine(*attrs.pop("transform"))
    grid = CubeGrid(years=years, height=array.shape[1], width=array.shape[2], transform=transform,
                    crs=attrs.pop("crs"))
    return ClassCube(path=str(path), grid=grid, attrs=attrs, chunks=tuple(array.chunks[1:]))


def _check_coded(classes: np.ndarray) -> np.ndarray:
    """A (year, y, x) uint8 cube whose values are filter classes or Table 3 class ids."""
    cube = np.asarray(classes)
    if cube.ndim != 3 or cube.dtype != np.uint8:
        raise InputError(f"a class cube is a (year, y, x) uint8 array; got {cube.dtype} {cube.shape}")
    if not _CODED[cube].all():
        unknown = np.setdiff1d(np.unique(cube), np.flatnonzero(_CODED))
        raise InputError(f"class cube holds values {unknown[:5].tolist()} that are neither classes nor class ids")
    return cube


_YEAR_IN_NAME = re.compile(r"(?<!\d)(1[89]\d\d|2\d\d\d)(?!\d)")


def year_of(path: Path) -> int:
    """The calendar year a file name carries (`mining_2019.tif` → 2019); InputError if none or several."""
    found = set(_YEAR_IN_NAME.findall(path.stem))
    if len(found) != 1:
        raise InputError(f"{path.name}: name it with exactly one year (e.g. mining_2019.tif) to stack it")
    return int(found.pop())


def stack_class_geotiffs(paths: list[Path], *, mining_value: int = MINING) -> tuple[np.ndarray, CubeGrid]:
    """Annual single-band class GeoTIFFs (one per year, year in the name) as a cube and its grid.

    `mining_value` marks mining in the files (30 in MapBiomas' maps), the file's nodata
    becomes `NODATA`, anything else is not mining. Every year must share one grid (CRS,
    transform and size): a year that differs is an InputError naming it, never resampled.
    """
    import rasterio

    if not paths:
        raise InputError("no annual class GeoTIFFs given: pass a folder of files named by year")
    by_year: dict[int, Path] = {}
    for path in paths:
        year = year_of(path)
        if year in by_year:
            raise InputError(f"{by_year[year].name} and {path.name} are both year {year}: keep one")
        by_year[year] = path
    years = sorted(by_year)
    layers, reference = [], None
    for year in years:
        with rasterio.open(by_year[year]) as src:
            here = (src.crs, src.transform, src.height, src.width)
            if reference is None:
                reference = (year, *here)
            elif here != reference[1:]:
                raise InputError(
                    f"{by_year[year].name} (year {year}) is on a different grid from year {reference[0]}: "
                    f"{_grid_text(*here)} vs {_grid_text(*reference[1:])}; reproject every year onto one grid"
                )
            band = src.read(1, masked=True)
        layer = np.where(np.ma.getdata(band) == mining_value, np.uint8(MINING), np.uint8(NOT_MINING))
        layers.append(np.where(np.ma.getmaskarray(band), np.uint8(NODATA), layer))
    _, crs, transform, height, width = reference
    if crs is None:
        raise InputError(f"{by_year[years[0]].name} has no CRS: a class map must be georeferenced")
    grid = CubeGrid(years=tuple(years), height=height, width=width, transform=transform, crs=crs.to_wkt())
    return np.stack(layers), grid


def _grid_text(crs: Any, transform: Affine, height: int, width: int) -> str:
    return f"{width}×{height} px, origin ({transform.c:.6f}, {transform.f:.6f}), pixel {transform.a:.3g}, {crs}"
