"""A synthetic Landsat annual time series with planted mines that live and die (SYNTHETIC).

What the MapBiomas method maps, year by year: a region of 30 m pixels seen once a year
(1 Jan – 31 Dec median TOA mosaics) for 20–40 years, holding

- mines (open pits, quarries and garimpos, the last strung along a river) that open in
  some year, grow for several years, may pause (no growth for a year or two), and may be
  abandoned, after which they revegetate over several years;
- the scan synth's look-alikes: water-supply dams (built in some year, permanent), river
  sand banks (their size follows the yearly water level), towns (slowly growing) and bare
  agricultural fields (bare in some years, cropped in others: a one-year false positive);
- a forest/pasture background cleared a little more each year, per-year vegetation vigour,
  haze and sensor gain, pixel noise and the sensor's blur;
- clouds: no-data gaps in many years and near-total gaps in a few, which the median mosaic
  cannot fill.

Objects are drawn with the scan synth's builders and spectra (`plan._build_*`, `SPECTRA`,
whose Sentinel-2 columns stand in for the Landsat bands of the same wavelength); only time
is new here. Truth per year: a pixel is mining once its part of the mine has opened and
until it is more than half revegetated; it is known in every year, clouds or not.

Output: one GeoTIFF per year (`mosaics/landsat_<year>.tif`, float32 TOA reflectance,
bands green, red, nir, swir1, NaN where cloudy) and one truth mask per year
(`truth/truth_<year>.tif`, uint8 1 mining, 0 not), plus `objects.geojson` with every
object's history. The same arguments give the same files.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..bands import PIXEL_DEG
from ..errors import InputError
from ..outputs import atomic_dir
from .kinds import CRS, SPECTRA, SPECTRA_BANDS, TEXTURE
from .plan import (
    _build_bare_field,
    _build_dam,
    _build_garimpo,
    _build_iron_pit,
    _build_quarry,
    _build_town,
    _Placer,
    _rng,
    _sand_bar,
    _to_lonlat,
    scene_transform,
)
from .render import _fractal

if TYPE_CHECKING:
    from affine import Affine

log = logging.getLogger(__name__)

#: a Landsat pixel: 30 m at the equator, the Landsat export grid's pixel
LANDSAT_PIXEL_DEG = 3 * PIXEL_DEG
#: the bands written, and the Sentinel-2 band of the same wavelength whose SPECTRA column they use
BANDS = ("green", "red", "nir", "swir1")
_S2_EQUIVALENT = {"green": "B3", "red": "B4", "nir": "B8", "swir1": "B11"}
_COLUMNS = np.array([SPECTRA_BANDS.index(_S2_EQUIVALENT[b]) for b in BANDS])
#: the sensor's blur (point spread), in pixels
_PSF_SIGMA = 0.5
#: reflectance noise per pixel and band
_NOISE = 0.006
#: subpixels per 30 m pixel side: objects are drawn on the 10 m grid of the scan synth
_SUB = 3
#: a mine's part opened in its first year, as a fraction of its final footprint
_FIRST_YEAR_SHARE = 0.35
MIN_YEARS, MAX_YEARS = 20, 40
SYNTHETIC_TAG = "minescan.synth.landsat"


@dataclass(frozen=True)
class History:
    """A planted object's life, in calendar years (None: it never happens in the series)."""

    opened: int
    growth_years: int = 1
    pauses: tuple[int, ...] = ()
    abandoned: int | None = None
    revegetation_years: int = 1

    def progress(self, year: int) -> float:
        """Share of the footprint opened by `year` (−1 before opening): growth stops in a
        pause year and for good once abandoned."""
        if year < self.opened:
            return -1.0
        last = year if self.abandoned is None else min(year, self.abandoned)
        active = sum(1 for y in range(self.opened + 1, last + 1) if y not in self.pauses)
        grown = min(1.0, active / self.growth_years)
        return _FIRST_YEAR_SHARE + (1 - _FIRST_YEAR_SHARE) * grown

    def revegetation(self, year: int) -> float:
        """0 while worked, rising to 1 over `revegetation_years` after abandonment."""
        if self.abandoned is None or year <= self.abandoned:
            return 0.0
        return min(1.0, (year - self.abandoned) / self.revegetation_years)

    def as_json(self) -> dict[str, Any]:
        return {"opened": self.opened, "growth_years": self.growth_years, "pauses": list(self.pauses),
                "abandoned": self.abandoned, "revegetation_years": self.revegetation_years}


@dataclass(frozen=True)
class _Part:
    """A polygon painted with a material, optionally mixed with a second one."""

    polygon: Any
    material: str
    mix_material: str | None = None
    mix: float = 0.0

    def spectrum(self) -> np.ndarray:
        own = _spectrum(self.material)
        if self.mix_material is None:
            return own
        return own * (1 - self.mix) + _spectrum(self.mix_material) * self.mix


@dataclass(frozen=True)
class PlantedObject:
    """One object: its kind, footprint (pixel coordinates), painted parts and history."""

    id: str
    kind: str
    is_target: bool
    footprint: Any  # shapely Polygon, x = column, y = row
    parts: tuple[_Part, ...]  # painted in order
    history: History


@dataclass(frozen=True)
class SeriesTruth:
    """What was planted: the years, the grid, the objects and the per-year mining masks."""

    years: tuple[int, ...]
    size: int
    transform: Affine
    crs: str
    objects: tuple[PlantedObject, ...]
    mining: np.ndarray  # (year, y, x) bool
    cloudy: np.ndarray  # (year, y, x) bool: no observation that year

    @property
    def targets(self) -> tuple[PlantedObject, ...]:
        return tuple(o for o in self.objects if o.is_target)

    def lonlat(self, polygon: Any) -> Any:
        """A polygon in pixel coordinates of this grid, in lon/lat (counter-clockwise)."""
        return _to_lonlat(polygon, self.transform)


@dataclass(frozen=True)
class _Rasters:
    """One object's pixels, in a window of the region around it."""

    window: tuple[slice, slice]
    cover: np.ndarray  # share of each pixel the footprint covers
    order: np.ndarray  # opening order in [0, 1] (NaN outside): a pixel opens once progress reaches it
    speed: np.ndarray  # revegetation speed factor
    parts: tuple[np.ndarray, ...]  # share of each pixel each part covers, painted in order


@dataclass(frozen=True)
class _Region:
    """The planned region: background fields, river and objects, with their rasters."""

    size: int
    years: tuple[int, ...]
    seed: int
    objects: tuple[PlantedObject, ...]
    rasters: tuple[_Rasters, ...]
    river: np.ndarray  # (y, x) share of each pixel in the channel
    forest: np.ndarray  # (y, x) field; forest where it exceeds the year's threshold
    texture: np.ndarray  # (y, x) unit-variance texture


def _spectrum(material: str) -> np.ndarray:
    """(4,) TOA reflectance of a material in `BANDS` order."""
    return np.asarray(SPECTRA[material], np.float32)[_COLUMNS] / np.float32(10_000)


def _coverage(poly: Any, window: tuple[slice, slice]) -> np.ndarray:
    """Share of each pixel of `window` that `poly` covers, from a 3 × 3 subpixel grid (10 m):
    edge pixels are mixed, as a 30 m sensor sees them."""
    from affine import Affine
    from rasterio.features import rasterize

    rows, cols = window[0].stop - window[0].start, window[1].stop - window[1].start
    if poly is None or poly.is_empty:
        return np.zeros((rows, cols), np.float32)
    fine = rasterize([(poly, 1)], out_shape=(rows * _SUB, cols * _SUB), fill=0, dtype="uint8",
                     transform=Affine.translation(window[1].start, window[0].start) @ Affine.scale(1 / _SUB))
    return fine.reshape(rows, _SUB, cols, _SUB).mean(axis=(1, 3), dtype=np.float32)


def _window(poly: Any, size: int, pad: int = 2) -> tuple[slice, slice]:
    minx, miny, maxx, maxy = poly.bounds
    return (slice(max(0, int(miny) - pad), min(size, int(np.ceil(maxy)) + pad)),
            slice(max(0, int(minx) - pad), min(size, int(np.ceil(maxx)) + pad)))


def _meander(rng: np.random.Generator, size: int) -> tuple[Any, np.ndarray, float]:
    """A river across the middle of the region: (channel polygon, centreline, width px)."""
    from shapely.geometry import LineString

    width = rng.uniform(3, 6)
    t = np.arange(-20.0, size + 20.0, 2.0)
    y = rng.uniform(0.35, 0.65) * size + rng.uniform(0.04, 0.1) * size * np.sin(
        2 * np.pi * t / rng.uniform(0.5, 1.0) / size + rng.uniform(0, 2 * np.pi))
    pts = np.column_stack([t, y]) if rng.random() < 0.5 else np.column_stack([y, t])
    return LineString(pts).buffer(width / 2), pts, width


def _history(rng: np.random.Generator, years: Sequence[int], *, mine: bool) -> History:
    first, last = years[0], years[-1]
    if not mine:  # dams are built at once; towns grow slowly and are never left
        return History(opened=int(rng.integers(first - 10, last - 4)),
                       growth_years=int(rng.integers(8, 25)))
    opened = int(rng.integers(first - 3, last - 4))
    growth = int(rng.integers(3, 11))
    pauses = tuple(int(y) for y in rng.choice(np.arange(opened + 1, opened + growth + 1),
                                              size=int(rng.integers(0, 3)), replace=False))
    abandoned = int(rng.integers(opened + 5, last + 1)) if rng.random() < 0.45 else None
    return History(opened, growth, tuple(sorted(pauses)), abandoned, int(rng.integers(4, 9)))


def _along_river(rng, pts: np.ndarray, width: float, s: float) -> tuple[float, float]:
    """A garimpo's centre beside the river channel, on either bank."""
    i = int(rng.integers(5, len(pts) - 5))
    tangent = pts[i + 1] - pts[i - 1]
    tangent = tangent / np.linalg.norm(tangent)
    normal = np.array([-tangent[1], tangent[0]]) * (1 if rng.random() < 0.5 else -1)
    centre = pts[i] + normal * (width / 2 + s * rng.uniform(0.3, 0.45))
    return float(centre[0]), float(centre[1])


def _plan_objects(rng, size: int, years: Sequence[int], river_poly, river_pts, river_width,
                  n_mines: int, n_lookalikes: int) -> list[PlantedObject]:
    placer = _Placer(size, None, river_poly, gap=4.0)
    margin = 6.0
    mine_kinds = [("garimpo", "open_pit_iron", "quarry_sand", "garimpo")[i % 4] for i in range(n_mines)]
    # sand banks and water dams first and twice: the look-alikes that persist for years, which
    # no temporal filter can remove (fields and towns change or differ more)
    cycle = ("river_bank", "water_dam", "bare_soil", "river_bank", "town", "water_dam")
    look_kinds = [cycle[i % len(cycle)] for i in range(n_lookalikes)]
    objects: list[PlantedObject] = []
    for kind in mine_kinds + look_kinds:
        target = kind in ("garimpo", "open_pit_iron", "quarry_sand")
        for _ in range(80):
            s = float(rng.uniform(14, 40))
            if kind == "garimpo":
                cx, cy = _along_river(rng, river_pts, river_width, s)
            else:
                cx, cy = rng.uniform(margin + s / 2, size - margin - s / 2, 2)
            built = _build_object(kind, rng, cx, cy, s, river_pts, river_width)
            if built is None:
                continue
            footprint, parts = built
            if kind in ("garimpo", "river_bank"):
                channel = river_poly.buffer(0.5)
                footprint = footprint.difference(channel)
                parts = [_Part(p.polygon.difference(channel), p.material, p.mix_material, p.mix)
                         for p in parts]
            if footprint.is_empty or footprint.area < 40:
                continue
            if placer.fits(footprint, margin, avoid_river=kind not in ("garimpo", "river_bank")):
                placer.placed.append(footprint)
                history = _history(rng, years, mine=target)
                objects.append(PlantedObject(f"obj-{len(objects) + 1:04d}", kind, target, footprint,
                                             tuple(parts), history))
                break
        else:
            log.debug("no room for a %s in a %d px region", kind, size)
    return objects


def _build_object(kind: str, rng, cx: float, cy: float, s: float, river_pts, river_width):
    """(footprint, parts) from the scan synth's builders; None if it failed.

    The builders draw in 10 m pixels (ponds, benches and walls at their real size), so the
    object is built three times larger and scaled down onto the 30 m grid.
    """
    from shapely import affinity

    cx, cy, s = cx * _SUB, cy * _SUB, s * _SUB
    builders = {
        "river_bank": lambda: _sand_bar(rng, river_pts * _SUB, river_width * _SUB),
        "garimpo": lambda: _build_garimpo(rng, cx, cy, s),
        "open_pit_iron": lambda: _build_iron_pit(rng, cx, cy, s),
        "quarry_sand": lambda: _build_quarry(rng, cx, cy, s, "quarry_sand"),
        "water_dam": lambda: _build_dam(rng, cx, cy, s, tailings=False),
        "town": lambda: _build_town(rng, cx, cy, s),
        "bare_soil": lambda: _build_bare_field(rng, cx, cy, s),
    }
    footprint, prims = builders[kind]()
    if footprint is None or not prims:
        return None

    def down(poly: Any) -> Any:
        return affinity.scale(poly, 1 / _SUB, 1 / _SUB, origin=(0, 0))

    # the garimpo's forest halo (layer 0) is background here: the region is forested anyway
    return down(footprint), [_Part(down(p.polygon), p.material, p.mix_material, p.mix)
                             for p in prims if p.layer == 2]


def _plan_region(size: int, years: Sequence[int], seed: int, n_mines: int, n_lookalikes: int) -> _Region:
    from scipy.ndimage import distance_transform_edt

    rng = _rng(seed, 30)
    river_poly, river_pts, river_width = _meander(rng, size)
    objects = _plan_objects(rng, size, years, river_poly, river_pts, river_width, n_mines, n_lookalikes)
    field_rng = _rng(seed, 31)
    forest = _fractal(field_rng, size, [(96, 1.0), (32, 0.6), (8, 0.3), (2, 0.1)])
    texture = _fractal(field_rng, size, [(6, 0.6), (2, 0.5), (1, 0.4)])
    front = _fractal(field_rng, size, [(12, 1.0), (4, 0.3)])  # a digging front is ragged, not speckled
    rasters = []
    for obj in objects:
        win = _window(obj.footprint, size)
        cover = _coverage(obj.footprint, win)
        inside = cover > 0
        # a mine opens from a seed pixel outwards: order = distance from it, with a ragged front
        core = np.argwhere(cover >= 0.5)
        seed_px = core[int(rng.integers(0, len(core)))] if len(core) else np.argwhere(inside)[0]
        away = np.ones(cover.shape, bool)
        away[tuple(seed_px)] = False
        dist = distance_transform_edt(away) * (1 + 0.2 * front[win])
        order = np.where(inside, dist, np.nan)
        order = order / np.nanmax(order) if np.nanmax(order) > 0 else order
        speed = np.where(inside, 1 + 0.3 * np.tanh(texture[win]), np.nan)
        parts = tuple(np.minimum(_coverage(p.polygon, win), cover) for p in obj.parts)
        rasters.append(_Rasters(win, cover, order.astype(np.float32), speed.astype(np.float32), parts))
    river = _coverage(river_poly, (slice(0, size), slice(0, size)))
    return _Region(size, tuple(years), seed, tuple(objects), tuple(rasters), river, forest, texture)


def _background(region: _Region, i_year: int, rng: np.random.Generator) -> np.ndarray:
    """(4, y, x) forest and pasture, a little more cleared each year, with yearly vigour."""
    n = len(region.years)
    threshold = -0.3 + 0.5 * i_year / max(n - 1, 1)  # the forest edge moves: clearing
    w_forest = 1 / (1 + np.exp(-(region.forest - threshold) / 0.08))
    vigour = 1 + rng.normal(0, 0.05)
    forest, pasture = _spectrum("forest"), _spectrum("pasture")
    nir = np.array([b == "nir" for b in BANDS])
    forest = np.where(nir, forest * vigour, forest / vigour)
    img = (forest[:, None, None] * w_forest * (1 + TEXTURE["forest"] * region.texture)
           + pasture[:, None, None] * (1 - w_forest) * (1 + TEXTURE["pasture"] * region.texture))
    return img.astype(np.float32)


def _paint(img: np.ndarray, texture: np.ndarray, material: str | _Part, weight: np.ndarray) -> None:
    """Blend `material` (with its texture) into `img` (4, y, x) by `weight` (y, x, 0–1)."""
    part = material if isinstance(material, _Part) else _Part(None, material)
    layer = part.spectrum()[:, None, None] * (1 + TEXTURE[part.material] * texture)
    img *= 1 - weight
    img += layer * weight


def _year_state(region: _Region, i_year: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """((4, y, x) reflectance before the atmosphere and sensor, (y, x) mining truth)."""
    year = region.years[i_year]
    img = _background(region, i_year, rng)
    level = rng.normal(0, 1)  # this year's river level: high water drowns the sand banks
    _paint(img, region.texture, "river_water", region.river)
    mining = np.zeros((region.size, region.size), bool)
    for obj, r in zip(region.objects, region.rasters):
        h, view, tex = obj.history, img[(slice(None), *r.window)], region.texture[r.window]
        if obj.kind == "river_bank":
            if level < 1.0:
                _paint(view, tex, obj.parts[0], r.parts[0] * (r.order <= 0.9 - 0.3 * level))
            continue
        if obj.kind == "bare_soil":
            if rng.random() < 0.3:  # fallow this year; cropped (pasture-like) otherwise
                _paint(view, tex, obj.parts[0], r.parts[0])
            continue
        progress = h.progress(year)
        if progress < 0:
            continue
        opened = r.order <= (1.0 if obj.kind == "water_dam" else progress)
        reveg = np.nan_to_num(np.clip(h.revegetation(year) * r.speed, 0, 1))
        for cover, part in zip(r.parts, obj.parts):
            _paint(view, tex, part, cover * opened * (1 - reveg))
        if obj.is_target:
            regrowth = "pasture" if h.revegetation(year) < 1 else "forest"
            _paint(view, tex, regrowth, r.cover * opened * reveg * 0.9)
            # mining where the mine covers most of the pixel and has not grown back half-way
            mining[r.window] |= opened & (r.cover >= 0.5) & (reveg < 0.5)
    return img, mining


def _clouds(region: _Region, rng: np.random.Generator) -> np.ndarray:
    """(y, x) True where the year's median mosaic has no cloud-free observation."""
    size = region.size
    kind = rng.random()
    if kind < 0.45:
        return np.zeros((size, size), bool)
    field = _fractal(rng, size, [(48, 1.0), (12, 0.4)])
    cover = 0.8 if kind > 0.93 else rng.uniform(0.03, 0.25)  # a few years are nearly all cloud
    return field > np.quantile(field, 1 - cover)


def _observe(img: np.ndarray, cloudy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The mosaic as seen: yearly haze and gain, the sensor's blur and noise, clouds as NaN."""
    from scipy.ndimage import gaussian_filter

    haze = np.array([0.02, 0.012, 0.004, 0.0], np.float32) * rng.uniform(0, 1.5)
    gain = rng.normal(1, 0.03, len(BANDS)).astype(np.float32)
    out = np.empty_like(img)
    for k in range(len(BANDS)):
        band = gaussian_filter(img[k], _PSF_SIGMA) * gain[k] + haze[k]
        out[k] = band + rng.normal(0, _NOISE, band.shape).astype(np.float32)
    np.clip(out, 0.001, 1.0, out=out)
    out[:, cloudy] = np.nan
    return out


def synthesize_series(
    out_dir: str | os.PathLike[str],
    *,
    size: int,
    first_year: int,
    last_year: int,
    seed: int,
    origin_lonlat: tuple[float, float] = (-56.0, -6.0),
    n_mines: int | None = None,
    n_lookalikes: int | None = None,
    overwrite: bool = False,
) -> SeriesTruth:
    """Write the synthetic series under `out_dir` (see the module doc) and return its truth."""
    import rasterio

    from ..log import progress

    years = tuple(range(first_year, last_year + 1))
    if not MIN_YEARS <= len(years) <= MAX_YEARS:
        raise InputError(f"{len(years)} years: a synthetic series spans {MIN_YEARS}–{MAX_YEARS} years")
    if not 64 <= size <= 4096:
        raise InputError(f"region size {size} px must be between 64 and 4096")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out} is not empty; pass --overwrite to replace it")
    area_km2 = (size * 0.03) ** 2
    n_mines = max(2, round(area_km2 / 8)) if n_mines is None else n_mines
    n_lookalikes = max(6, round(area_km2 / 6)) if n_lookalikes is None else n_lookalikes
    region = _plan_region(size, years, seed, n_mines, n_lookalikes)
    transform = scene_transform(origin_lonlat, LANDSAT_PIXEL_DEG)
    profile = dict(driver="GTiff", width=size, height=size, crs=CRS, transform=transform,
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    mining = np.zeros((len(years), size, size), bool)
    cloudy = np.zeros_like(mining)
    with atomic_dir(out) as tmp:
        (tmp / "mosaics").mkdir(parents=True)
        (tmp / "truth").mkdir()
        for i, year in progress(list(enumerate(years)), len(years), "synthesising the series"):
            rng = _rng(seed, 32, year)
            img, mining[i] = _year_state(region, i, rng)
            cloudy[i] = _clouds(region, rng)
            mosaic = _observe(img, cloudy[i], rng)
            with rasterio.open(tmp / "mosaics" / f"landsat_{year}.tif", "w", count=len(BANDS),
                               dtype="float32", nodata=float("nan"), **profile) as dst:
                dst.descriptions = BANDS
                dst.update_tags(SYNTHETIC=SYNTHETIC_TAG, SEED=str(seed), YEAR=str(year))
                dst.write(mosaic)
            with rasterio.open(tmp / "truth" / f"truth_{year}.tif", "w", count=1, dtype="uint8",
                               **profile) as dst:
                dst.descriptions = ("mining",)
                dst.update_tags(SYNTHETIC=SYNTHETIC_TAG, SEED=str(seed), YEAR=str(year))
                dst.write(mining[i].astype(np.uint8)[None])
        truth = SeriesTruth(years, size, transform, CRS, region.objects, mining, cloudy)
        _write_objects(tmp / "objects.geojson", truth)
    log.info("synthesised %s: %d px, %d years, %d mines, %d look-alikes (synthetic)", out, size,
             len(years), len(truth.targets), len(region.objects) - len(truth.targets))
    return truth


def _write_objects(path: Path, truth: SeriesTruth) -> None:
    from shapely.geometry import mapping

    features = [{
        "type": "Feature", "id": o.id,
        "geometry": mapping(truth.lonlat(o.footprint)),
        "properties": {"id": o.id, "kind": o.kind, "is_target": o.is_target, **o.history.as_json()},
    } for o in truth.objects]
    doc = {"type": "FeatureCollection", "synthetic": True, "features": features,
           "years": [truth.years[0], truth.years[-1]], "size": truth.size}
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")

