"""Opening a scene: every check a user's GeoTIFF must pass, before anything is computed.

Each failure is an `InputError` that names the file, says what is wrong and what to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..bands import S2_BANDS
from ..errors import InputError
from . import geometry

if TYPE_CHECKING:
    import rasterio
    from affine import Affine


@dataclass(frozen=True)
class SceneInfo:
    """What the scan needs to know about a scene file."""

    path: str
    scene_id: str
    height: int
    width: int
    crs_wkt: str
    transform: "Affine"
    #: 1-based band indexes in the file, in the model's band order
    band_indexes: tuple[int, ...]
    #: per selected band, the value that marks nodata (None: no declared nodata)
    nodata: tuple[float | None, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width


def scene_id_from_path(path: str) -> str:
    name = Path(str(path).rstrip("/")).name
    for suffix in (".tif", ".tiff", ".TIF", ".TIFF", ".vrt"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def open_raster(path: str) -> "rasterio.DatasetReader":
    """rasterio.open with a user-facing error for anything that is not a readable raster."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        if not str(path).startswith(("gs://", "/vsi", "http")) and not Path(path).exists():
            raise InputError(f"scene {path} does not exist") from None
        raise InputError(
            f"{path} is not a readable raster ({exc}); give a GeoTIFF scene (uint16 reflectance×10000)"
        ) from None


def inspect_scene(
    src: "rasterio.DatasetReader", model_bands: tuple[str, ...], scene_id: str | None = None
) -> SceneInfo:
    """Validate an open scene against a model's band list."""
    path = src.name
    if src.crs is None:
        raise InputError(
            f"{path} has no CRS, so detections cannot be placed on the map; export it with its "
            "CRS or assign one (gdal_edit.py -a_srs EPSG:4326 FILE)"
        )
    if src.height < geometry.CHIP or src.width < geometry.CHIP:
        raise InputError(
            f"{path} is {src.height}×{src.width} px, smaller than one {geometry.CHIP}×{geometry.CHIP}"
            " px chip (2 km at 10 m): give a larger scene"
        )
    if not all(np.issubdtype(np.dtype(d), np.number) for d in src.dtypes):
        raise InputError(f"{path} has non-numeric bands {set(src.dtypes)}")
    if not math.isfinite(src.transform.determinant) or src.transform.determinant == 0:
        raise InputError(f"{path} has a degenerate geotransform {tuple(src.transform)[:6]}")
    band_indexes = _select_bands(src, model_bands)
    nodata = tuple(src.nodatavals[i - 1] for i in band_indexes)
    return SceneInfo(
        path=path,
        scene_id=scene_id or scene_id_from_path(path),
        height=src.height,
        width=src.width,
        crs_wkt=src.crs.to_wkt(),
        transform=src.transform,
        band_indexes=band_indexes,
        nodata=nodata,
    )


def _select_bands(src: "rasterio.DatasetReader", model_bands: tuple[str, ...]) -> tuple[int, ...]:
    """Pick the model's bands by name when the file names its bands, else by position."""
    names = [d.strip().upper() if d else "" for d in src.descriptions]
    if names and all(n in S2_BANDS for n in names):
        missing = [b for b in model_bands if b not in names]
        if missing:
            raise InputError(
                f"{src.name} has bands {names} but the model needs {list(model_bands)}: "
                f"missing {missing}"
            )
        return tuple(names.index(b) + 1 for b in model_bands)
    if src.count != len(model_bands):
        raise InputError(
            f"{src.name} has {src.count} bands but the model expects {len(model_bands)} "
            f"({','.join(model_bands)}): export the scene with the model's bands in that order"
        )
    return tuple(range(1, src.count + 1))


def valid_mask(raw: np.ndarray, nodata: tuple[float | None, ...]) -> np.ndarray:
    """(h, w) True where every band holds data.

    A pixel is nodata if any band equals its declared nodata value or is NaN, or if all bands
    are 0 (how Earth Engine exports fill outside the footprint when no nodata is declared).
    """
    invalid = np.all(raw == 0, axis=0)
    for band, nd in zip(raw, nodata):
        if nd is not None and not (isinstance(nd, float) and math.isnan(nd)):
            invalid |= band == nd
        if np.issubdtype(band.dtype, np.floating):
            invalid |= ~np.isfinite(band)
    return ~invalid


def apply_affine(t: "Affine", cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of fractional pixel coordinates, vectorised."""
    cols, rows = np.asarray(cols, np.float64), np.asarray(rows, np.float64)
    return t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f


def pixel_centres_lonlat(
    transform: "Affine", crs_wkt: str, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """lon, lat (EPSG:4326) of the centres of scene pixels (rows, cols)."""
    xs, ys = apply_affine(transform, np.asarray(cols, np.float64) + 0.5, np.asarray(rows, np.float64) + 0.5)
    from rasterio.crs import CRS

    crs = CRS.from_wkt(crs_wkt)
    if crs.to_epsg() == 4326 or len(xs) == 0:
        return xs, ys
    from rasterio.warp import transform as warp

    lon, lat = warp(crs, CRS.from_epsg(4326), xs.tolist(), ys.tolist())
    return np.asarray(lon, np.float64), np.asarray(lat, np.float64)


def cell_transform(transform: "Affine") -> "Affine":
    """Affine of the output-cell grid: cell (i, j) is centred on pixel (27i+100, 27j+100)."""
    from affine import Affine

    corner = geometry.CENTRE_OFFSET + 0.5 - geometry.STRIDE / 2
    return transform @ Affine.translation(corner, corner) @ Affine.scale(geometry.STRIDE)
