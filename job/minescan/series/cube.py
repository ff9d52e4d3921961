"""Annual Landsat mosaics of a region → the method's six features in a zarr v3 cube.

The MapBiomas U-Net reads six attributes per pixel and year (MapBiomas mining ATBD, Col. 9,
Table 2): SWIR1, NIR and Red top-of-atmosphere reflectance, and three normalised
differences computed once here,

    MNDWI = (G − SWIR1) / (G + SWIR1)    NDVI = (NIR − R) / (NIR + R)
    NDSI  = (SWIR1 − NIR) / (SWIR1 + NIR)   (a soil index, Deng et al. 2015).

Inputs are one GeoTIFF per year: `minescan acquire landsat` exports (`<year>/<tile>.tif`,
float32, the six features already computed, no-data −9999), or any folder of per-year
GeoTIFFs whose path names the year and whose bands are named green, red, nir and swir1
(the features are then computed here). A pixel without an observation is no-data in every
feature and stays NaN in the cube: gaps are the gap-fill filter's business, never filled
here. Every year must share one grid; a year that does not is refused before anything is
written.

The store (zarr v3, the scan's probability-store conventions): variable `features`
(year, y, x, feature), float32, NaN = no observation; coordinates `year`, `feature` (the
names), cell-centre `x`/`y` and the CF grid mapping `spatial_ref`; dataset attributes `crs`
and `transform` (a, b, c, d, e, f). Each chunk is one year of a 512 × 512 window, so a year
is read without touching the others. The cube is built year by year in a hidden sibling and
renamed into place only when every year is written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..log import progress
from ..outputs import atomic_dir, grid_coords
from ..outputs.probability import quiet_consolidated
from .cube_io import CubeGrid

if TYPE_CHECKING:
    import xarray as xr

log = logging.getLogger(__name__)

#: the method's inputs, in the order `minescan acquire landsat` exports them
FEATURES = ("swir1", "nir", "red", "mndwi", "ndvi", "ndsi")
#: the reflectance bands the three indices are computed from
RAW_BANDS = ("green", "red", "nir", "swir1")
VARIABLE = "features"
#: spatial chunk edge; one year per chunk
CHUNK = 512
_YEAR = re.compile(r"(?<!\d)(19[6-9]\d|2[01]\d\d)(?!\d)")
_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class YearFile:
    """One year's mosaic file."""

    year: int
    path: Path


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a − b) / (a + b) in float32; NaN where either input is NaN or the sum is 0."""
    a = a.astype(np.float32, copy=False)
    b = b.astype(np.float32, copy=False)
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / total
    out[total == 0] = np.nan
    return out


def features_from_bands(green: np.ndarray, red: np.ndarray, nir: np.ndarray,
                        swir1: np.ndarray) -> np.ndarray:
    """(rows, cols, 6) float32 in `FEATURES` order from four reflectance bands (NaN = no-data)."""
    features = np.stack([
        swir1.astype(np.float32, copy=False), nir.astype(np.float32, copy=False),
        red.astype(np.float32, copy=False),
        normalized_difference(green, swir1), normalized_difference(nir, red),
        normalized_difference(swir1, nir),
    ], axis=-1)
    # a pixel missing in any band has no observation at all: no-data in every feature
    features[np.isnan(features).any(axis=-1)] = np.nan
    return features


def find_year_files(source: str | os.PathLike[str], tile: str | None = None) -> list[YearFile]:
    """One GeoTIFF per year below `source`, the year read from the path relative to it.

    `tile` picks one tile's files (by file stem) where an export holds several per year.
    """
    root = Path(source)
    if not root.is_dir():
        raise InputError(f"{root} is not a directory of annual mosaics")
    by_year: dict[int, list[Path]] = {}
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in _SUFFIXES and p.is_file()):
        if path.name.startswith(".") or (tile is not None and path.stem != tile):
            continue
        relative = path.relative_to(root)
        # a picked tile's own name (r0123c0456) is not searched for a year
        years = set(_YEAR.findall(str(relative.parent if tile else relative.with_suffix(""))))
        if len(years) != 1:
            log.warning("skipping %s: its path names %s years, not one", path, len(years) or "no")
            continue
        by_year.setdefault(int(years.pop()), []).append(path)
    if not by_year:
        what = f" for tile {tile!r}" if tile else ""
        raise InputError(f"no GeoTIFF named with a year found under {root}{what}: name each "
                         "year's mosaic with its year (e.g. 1985/tile.tif or mosaic_1985.tif)")
    several = {y: [p.stem for p in ps] for y, ps in by_year.items() if len(ps) > 1}
    if several:
        year, stems = next(iter(several.items()))
        raise InputError(f"{root} holds {len(stems)} mosaics for {year} ({', '.join(stems[:5])}): "
                         "pass --tile to pick one region's files")
    return [YearFile(y, by_year[y][0]) for y in sorted(by_year)]


def file_grid(path: Path) -> CubeGrid:
    """A GeoTIFF's grid (with no years)."""
    import rasterio

    with rasterio.open(path) as src:
        if src.crs is None:
            raise InputError(f"{path} has no CRS: export the mosaic with its georeferencing")
        return CubeGrid((), src.height, src.width, src.transform, src.crs.to_string())


def same_grid(a: CubeGrid, b: CubeGrid) -> bool:
    """Same size, CRS and transform (to a billionth of a pixel), whatever the years."""
    return (a.height, a.width, a.crs) == (b.height, b.width, b.crs) and \
        a.transform.almost_equals(b.transform, precision=1e-9 * abs(b.transform.a))


def describe_grid(grid: CubeGrid) -> str:
    return f"{grid.width}×{grid.height} px, {grid.crs}, transform {tuple(grid.transform)[:6]}"


def check_same_grid(files: Sequence[YearFile]) -> CubeGrid:
    """The grid every year shares, with their years; `InputError` naming a year that differs."""
    grid = file_grid(files[0].path)
    for f in files[1:]:
        other = file_grid(f.path)
        if not same_grid(other, grid):
            raise InputError(
                f"{f.path} ({f.year}) is on a different grid from {files[0].path} ({files[0].year}): "
                f"{describe_grid(other)} vs {describe_grid(grid)}; export every year on the same grid"
            )
    return dataclasses.replace(grid, years=tuple(f.year for f in files))


def read_year_features(path: Path) -> np.ndarray:
    """(rows, cols, 6) float32 features of one mosaic, NaN where it has no observation."""
    import rasterio

    with rasterio.open(path) as src:
        names = [(d or "").strip().lower() for d in src.descriptions]
        if all(f in names for f in FEATURES):
            chosen, computed = [names.index(f) for f in FEATURES], False
        elif all(b in names for b in RAW_BANDS):
            chosen, computed = [names.index(b) for b in RAW_BANDS], True
        elif not any(names) and src.count == len(FEATURES):
            # an unnamed six-band file: the export's own band order
            chosen, computed = list(range(len(FEATURES))), False
        else:
            raise InputError(
                f"{path} has bands {names or src.count}: name them {list(FEATURES)} (as "
                f"`minescan acquire landsat` exports) or {list(RAW_BANDS)}"
            )
        data = src.read([i + 1 for i in chosen], masked=True).astype(np.float32)
    bands = np.ma.filled(data, np.nan)
    if computed:
        return features_from_bands(*bands)
    features = np.moveaxis(bands, 0, -1)
    features[np.isnan(features).any(axis=-1)] = np.nan
    return np.ascontiguousarray(features)


def build_cube(source: str | os.PathLike[str], out: str | os.PathLike[str], *,
               tile: str | None = None, overwrite: bool = False) -> CubeGrid:
    """Stack the annual mosaics under `source` into the feature cube `out`; its grid.

    Every file's grid is checked before the first year is read, and the cube is written to
    a hidden sibling and renamed into place, so a failure leaves nothing under `out`.
    """
    import rasterio

    out = Path(out)
    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists; pass --overwrite to replace it")
    files = find_year_files(source, tile)
    grid = check_same_grid(files)
    with rasterio.open(files[0].path) as src:
        synthetic = src.tags().get("SYNTHETIC")

    def years() -> Iterator[np.ndarray]:
        for f in progress(files, len(files), "building the feature cube"):
            yield read_year_features(f.path)

    attrs = {"source": str(source), "files": {str(f.year): f.path.name for f in files},
             "method": "MapBiomas mining ATBD, Collection 9 (Landsat TOA annual mosaics)"}
    if synthetic:
        attrs["synthetic"] = synthetic
    write_feature_cube(out, grid, FEATURES, years(), attrs)
    log.info("wrote %s: %d years, %s", out, len(files), describe_grid(grid),
             extra={"cube": str(out), "years": len(files)})
    return grid


# --- the store -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureCube:
    """An opened feature cube: its grid (with years) and features; `year_features` reads one year."""

    path: str
    grid: CubeGrid
    features: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def years(self) -> tuple[int, ...]:
        return self.grid.years

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
            values = ds[VARIABLE].isel(year=self.years.index(year)).values
        return np.ascontiguousarray(values[..., index], dtype=np.float32)


def write_feature_cube(path: str | os.PathLike[str], grid: CubeGrid, features: Sequence[str],
                       arrays: Iterable[np.ndarray], attrs: dict[str, Any]) -> None:
    """Stream (rows, cols, features) float32 arrays, one per year of `grid`, into a cube at `path`."""
    import xarray as xr

    years = list(grid.years)
    if not years or len(set(years)) != len(years) or years != sorted(years):
        raise InputError(f"years must be distinct and increasing, got {years}")
    coords, georef = grid_coords(grid.height, grid.width, grid.transform, grid.crs)
    coords["feature"] = ("feature", np.asarray(list(features), dtype=object))
    try:
        ds_attrs = {**georef, **json.loads(json.dumps(attrs, allow_nan=False))}
    except (TypeError, ValueError) as exc:
        raise InputError(f"cube attributes must be JSON-serialisable: {exc}") from None
    shape = (grid.height, grid.width, len(features))
    var_attrs = {"long_name": "Landsat annual mosaic features (MapBiomas mining ATBD, Table 2)",
                 "grid_mapping": "spatial_ref"}
    with atomic_dir(path) as tmp, quiet_consolidated():
        for i, (year, array) in enumerate(zip(years, arrays, strict=True)):
            if array.shape != shape:
                raise InputError(f"year {year}: features of shape {array.shape}, expected {shape}")
            ds = xr.Dataset(
                {VARIABLE: (("year", "y", "x", "feature"), array.astype(np.float32)[None], var_attrs)},
                coords={"year": ("year", np.array([year], np.int16)), **coords},
                attrs=ds_attrs,
            )
            if i == 0:
                chunks = (1, min(CHUNK, grid.height), min(CHUNK, grid.width), len(features))
                ds.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=True,
                           encoding={VARIABLE: {"chunks": chunks}})
            else:
                # the static coordinates are in the store already: append only the year
                ds.drop_vars(list(coords)).to_zarr(tmp, append_dim="year", consolidated=True)


def open_feature_cube(path: str | os.PathLike[str]) -> FeatureCube:
    """A feature cube's grid, years and features (no pixels are read)."""
    from affine import Affine

    with _open(path) as ds:
        if VARIABLE not in ds or ds[VARIABLE].dims != ("year", "y", "x", "feature"):
            raise InputError(f"{path} is not a minescan feature cube (no {VARIABLE}(year, y, x, feature)): "
                             "build one with `minescan series cube`")
        attrs = dict(ds.attrs)
        if "crs" not in attrs or "transform" not in attrs:
            raise InputError(f"{path} has no crs/transform attributes: it was not written by minescan")
        grid = CubeGrid(tuple(int(y) for y in ds["year"].values), int(ds.sizes["y"]),
                        int(ds.sizes["x"]), Affine(*attrs.pop("transform")[:6]), attrs.pop("crs"))
        return FeatureCube(str(path), grid, tuple(str(f) for f in ds["feature"].values), attrs)


@contextmanager
def _open(path: str | os.PathLike[str]) -> Iterator[xr.Dataset]:
    import xarray as xr

    try:
        ds = xr.open_zarr(path)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise InputError(f"cannot open the feature cube {path}: {exc}") from None
    with ds:
        yield ds
