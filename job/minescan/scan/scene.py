"""Opening a scene: every check a user's GeoTIFF must pass, before anything is computed.

Each failure is an `InputError` that names the file, says what is wrong and what to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..bands import select_bands
from ..errors import InputError
from . import geometry

if TYPE_CHECKING:
    import rasterio
    from affine import Affine

    from ..models.card import ModelCard


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
    src: "rasterio.DatasetReader",
    model_bands: tuple[str, ...],
    scene_id: str | None = None,
    *,
    max_pixels: int | None = None,
) -> SceneInfo:
    """Validate an open scene against a model's band list, before anything is read."""
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
    if max_pixels is not None and src.height * src.width > max_pixels:
        raise InputError(
            f"{path} declares {src.height}×{src.width} px, more than max_scene_pixels "
            f"({max_pixels:,}); cut it into scenes (`minescan acquire scenes` does) or raise "
            "max_scene_pixels in the scan config"
        )
    if not all(np.issubdtype(np.dtype(d), np.number) for d in src.dtypes):
        raise InputError(f"{path} has non-numeric bands {set(src.dtypes)}")
    t = src.transform
    if not math.isfinite(t.determinant) or t.determinant == 0:
        raise InputError(f"{path} has a degenerate geotransform {tuple(t)[:6]}")
    if t.b != 0 or t.d != 0:
        raise InputError(
            f"{path} has a rotated or sheared geotransform {tuple(t)[:6]}; the scan needs "
            "north-up pixels: warp it first (gdalwarp -t_srs EPSG:4326 IN OUT)"
        )
    band_indexes = select_bands(src.descriptions, src.count, model_bands, path)
    nodata = tuple(src.nodatavals[i - 1] for i in band_indexes)
    return SceneInfo(
        path=path,
        scene_id=scene_id or Path(path).stem,
        height=src.height,
        width=src.width,
        crs_wkt=src.crs.to_wkt(),
        transform=src.transform,
        band_indexes=band_indexes,
        nodata=nodata,
    )


#: sample windows read to judge a scene's value range (a 4 × 4 grid of 64-px squares)
_SAMPLE_GRID, _SAMPLE_PX = 4, 64
#: a scene whose typical value is this far (×) from the training data's is in other units
_RANGE_FACTOR = 20.0


def check_input_values(
    src: "rasterio.DatasetReader", scene: SceneInfo, card: "ModelCard", scale: float | None
) -> None:
    """Refuse a scene whose pixel type or values cannot be the model's input.

    The model card records what the network was trained on (`input_dtype`, `input_range`,
    and always the per-band mean). A scene stored as int8, or as reflectance 0–1 where the
    model learnt reflectance × 10000, would scan to zero detections without a word; with
    `scale` (``--input-scale``) the user says how to convert, and the check applies to the
    scaled values.
    """
    factor = 1.0 if scale is None else float(scale)
    hint = "pass --input-scale S (S × value = the model's units, e.g. 10000 for reflectance 0–1)"
    dtype = np.dtype(src.dtypes[scene.band_indexes[0] - 1])
    mean = np.asarray(card.normalization.mean, np.float64)
    top = float(card.input_range[1]) if card.input_range else float(np.max(mean))
    reach = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else np.inf
    if reach * factor < 0.5 * top:
        raise InputError(
            f"{scene.path} stores {dtype} pixels (at most {reach}), but the model was trained on "
            f"{card.input_dtype or 'values'} up to {top:g}: re-export the scene as "
            f"{card.input_dtype or 'the training data type'}, or {hint}"
        )
    sample = _sample_values(src, scene)
    if sample is None:
        return  # no valid pixel in the sample; the scan itself reports an all-nodata scene
    typical = np.median(sample, axis=0) * factor
    usable = mean > 0
    if not usable.any():
        return
    ratio = float(np.median(np.maximum(typical[usable], 1e-12) / mean[usable]))
    if not 1 / _RANGE_FACTOR <= ratio <= _RANGE_FACTOR:
        raise InputError(
            f"{scene.path} has typical values {np.median(typical):.4g} where the model's training "
            f"data had {np.median(mean):.4g} ({ratio:.3g}×): the scene is in other units; {hint}"
        )


def _sample_values(src: "rasterio.DatasetReader", scene: SceneInfo) -> np.ndarray | None:
    """(n, bands) valid pixels from a grid of small windows spread over the scene."""
    from rasterio.windows import Window

    side = min(_SAMPLE_PX, scene.height, scene.width)
    rows = np.linspace(0, scene.height - side, _SAMPLE_GRID).astype(int)
    cols = np.linspace(0, scene.width - side, _SAMPLE_GRID).astype(int)
    found = []
    for r in rows:
        for c in cols:
            raw = read_window(src, scene, Window(int(c), int(r), side, side))
            valid = valid_mask(raw, scene.nodata)
            found.append(raw[:, valid].T.astype(np.float64))
    values = np.concatenate(found)
    return values if len(values) else None


def read_window(src: "rasterio.DatasetReader", scene: SceneInfo, window, out: np.ndarray | None = None) -> np.ndarray:
    """(bands, h, w) of the scene's model bands in `window`; a file that fails to decode
    (truncated, corrupt) is an `InputError` naming it.

    With `out`, a (bands, h, w) array, GDAL decodes into it and `out` is returned (the scan
    reuses two such buffers instead of fresh pages for every sub-tile).
    """
    from rasterio.errors import RasterioError

    try:
        if out is not None:
            src.read(list(scene.band_indexes), window=window, out=out)
            return out
        return src.read(list(scene.band_indexes), window=window)
    except RasterioError as exc:
        raise InputError(
            f"{scene.path} cannot be read at rows {window.row_off}–{window.row_off + window.height}, "
            f"cols {window.col_off}–{window.col_off + window.width} ({_first_line(exc)}): the file is "
            "truncated or corrupt; download or export it again"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def valid_mask(raw: np.ndarray, nodata: tuple[float | None, ...]) -> np.ndarray:
    """(h, w) True where every band holds data.

    A pixel is nodata if any band equals its declared nodata value or is NaN, or if all bands
    are 0 (how Earth Engine exports fill outside the footprint when no nodata is declared).
    Band plane by band plane, with no (bands, h, w) temporary: the scan calls it on row
    blocks that stay in cache.
    """
    if np.issubdtype(raw.dtype, np.integer):
        any_set = raw[0].copy()
        for band in raw[1:]:
            any_set |= band
        invalid = any_set == 0
    else:
        invalid = raw[0] == 0
        for band in raw[1:]:
            invalid &= band == 0
    at_floor = []  # integer bands whose nodata is the type's least value: one test of their minimum
    for band, nd in zip(raw, nodata):
        if nd is None or (isinstance(nd, float) and math.isnan(nd)):
            pass
        elif np.issubdtype(band.dtype, np.integer) and nd == np.iinfo(band.dtype).min:
            at_floor.append(band)
        else:
            invalid |= band == nd
        if np.issubdtype(band.dtype, np.floating):
            invalid |= ~np.isfinite(band)
    if at_floor:
        least = at_floor[0].copy()
        for band in at_floor[1:]:
            np.minimum(least, band, out=least)
        invalid |= least == np.iinfo(least.dtype).min
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
        return normalize_lon(xs), ys
    from rasterio.warp import transform as warp

    lon, lat = warp(crs, CRS.from_epsg(4326), xs.tolist(), ys.tolist())
    return normalize_lon(np.asarray(lon, np.float64)), np.asarray(lat, np.float64)


def normalize_lon(lon: np.ndarray) -> np.ndarray:
    """Longitudes wrapped into [−180, 180): a scene that crosses the antimeridian on an
    EPSG:4326 grid has pixel centres past 180° east, which no GIS accepts."""
    lon = np.asarray(lon, np.float64)
    return np.where((lon >= -180.0) & (lon < 180.0), lon, (lon + 180.0) % 360.0 - 180.0)


def cell_transform(transform: "Affine") -> "Affine":
    """Affine of the output-cell grid: cell (i, j) is centred on pixel (27i+100, 27j+100)."""
    from affine import Affine

    corner = geometry.CENTRE_OFFSET + 0.5 - geometry.STRIDE / 2
    return transform @ Affine.translation(corner, corner) @ Affine.scale(geometry.STRIDE)
