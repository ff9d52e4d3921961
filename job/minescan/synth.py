"""Synthetic Sentinel-2 L1C scenes with planted mines, tailings dams and their look-alikes.

No public 12-band imagery of mines exists (see the shared data README), so the demo, the
tests, the benchmarks and the demo models all run on scenes made here. A scene is planned
first (pure, cheap: a river, object polygons and the paint primitives that draw them, plus
low-resolution noise fields), then rendered block by block: every block takes its pixels
from the plan and from an RNG seeded by (seed, block), so a 9216² × 12 scene never exists
as one array and the bytes do not depend on how many blocks are in memory at once.

Radiometry: L1C top-of-atmosphere reflectance × 10000 as uint16, from the per-band table
`SPECTRA` (visible values calibrated against the real L1C tailings scenes in the shared
data). 20 m and 60 m bands are rendered at their own resolution and repeated to 10 m, as an
Earth Engine export at 10 m does with nearest-neighbour resampling.

Truth: targets (open pits, garimpo, tailings dams: the classes the paper calls mine or dam)
and look-alikes (water-supply dams and river banks, the paper's false positives, plus towns
and bare agricultural soil, the hard negatives) as `TruthObject`s, written as GeoJSON.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .bands import DEFAULT_BANDS, PIXEL_DEG, S2_BANDS, check_bands
from .errors import InputError
from .outputs import atomic_path

if TYPE_CHECKING:
    from affine import Affine
    from shapely.geometry import Polygon

log = logging.getLogger(__name__)

NODATA = 0
CRS = "EPSG:4326"
#: targets keep this many pixels from the scene edge and from the no-data region
TARGET_EDGE_MARGIN = 120
#: side of planted mines and dams, pixels (400 m – 2.5 km)
MIN_OBJECT_PX, MAX_OBJECT_PX = 40, 250
#: rendering block side: a multiple of the 256-px GeoTIFF tile and of the 60 m / 10 m ratio 6
BLOCK = 768
#: low-resolution noise fields have one node every FIELD_STEP pixels
FIELD_STEP = 4

#: the column order of SPECTRA: all 13 MSI bands (B1 … B12 with B8A)
SPECTRA_BANDS = tuple(S2_BANDS)

# L1C TOA reflectance × 10000, columns in S2_BANDS order:
#                 B1    B2    B3    B4    B5    B6    B7    B8   B8A   B9  B10   B11   B12
SPECTRA: dict[str, tuple[int, ...]] = {
    "forest":       (1150,  820,  700,  450,  900, 2000, 2400, 2550, 2700, 800, 12, 1400,  620),
    "pasture":      (1250,  930,  880,  820, 1250, 1950, 2250, 2400, 2550, 780, 14, 2400, 1500),
    "bare_soil":    (1350, 1080, 1130, 1380, 1700, 1950, 2100, 2200, 2300, 820, 15, 3000, 2400),
    "water":        (1200,  860,  640,  400,  330,  270,  250,  230,  210,  80,  8,  110,   70),
    "river_water":  (1250,  950,  850,  650,  560,  420,  380,  350,  320, 120,  9,  190,  120),
    "town":         (1400, 1180, 1150, 1220, 1450, 1750, 1900, 2000, 2100, 720, 15, 2500, 2100),
    "sand_bar":     (1600, 1500, 1650, 1900, 2150, 2300, 2400, 2500, 2600, 950, 16, 3300, 2600),
    "iron_ore":     (1200,  900,  820,  900, 1050, 1150, 1200, 1250, 1300, 480, 12, 1700, 1500),
    "iron_bench":   (1350, 1100, 1100, 1350, 1600, 1750, 1850, 1900, 1950, 700, 14, 2600, 2200),
    "quarry_sand":  (1850, 1850, 2050, 2300, 2500, 2650, 2750, 2850, 2950, 1100, 17, 3700, 3000),
    "quarry_gravel": (1650, 1550, 1600, 1650, 1800, 1900, 2000, 2050, 2100, 850, 16, 3000, 2700),
    "garimpo_soil": (1450, 1300, 1450, 1750, 2000, 2150, 2250, 2350, 2450, 900, 15, 3300, 2700),
    "mud_pond":     (1400, 1250, 1350, 1500, 1500, 1300, 1200, 1100, 1050, 420, 11,  700,  420),
    "tailings":     (1350, 1250, 1300, 1450, 1500, 1350, 1250, 1150, 1100, 400, 10,  650,  400),
    "tailings_beach": (1600, 1550, 1700, 1950, 2150, 2250, 2300, 2350, 2400, 880, 15, 3000, 2500),
    "dam_wall":     (1600, 1500, 1650, 1950, 2200, 2350, 2450, 2550, 2650, 980, 16, 3400, 2800),
    "pit_lake":     (1250,  950,  800,  600,  520,  400,  360,  330,  300, 110,  9,  170,  110),
}

#: relative amplitude of a material's spatial texture (canopy shadow, tillage, ripples)
TEXTURE: dict[str, float] = {
    "forest": 0.07, "pasture": 0.09, "bare_soil": 0.10, "water": 0.03, "river_water": 0.04,
    "town": 0.16, "sand_bar": 0.06, "iron_ore": 0.10, "iron_bench": 0.08, "quarry_sand": 0.07,
    "quarry_gravel": 0.09, "garimpo_soil": 0.12, "mud_pond": 0.05, "tailings": 0.05,
    "tailings_beach": 0.06, "dam_wall": 0.05, "pit_lake": 0.03,
}

#: added to every pixel × the haze field: path radiance, mostly in the short wavelengths
_HAZE = (260, 210, 150, 100, 70, 50, 40, 35, 30, 15, 2, 10, 5)
#: sensor noise σ per band (DN): ~0.4 % of a typical land signal plus a floor; B10 is quiet
_NOISE = tuple(1.0 if b == "B10" else 5.0 + 0.004 * v
               for b, v in zip(S2_BANDS, (1250, 930, 880, 820, 1250, 1950, 2250, 2400, 2550,
                                          780, 14, 2400, 1500)))


@dataclass(frozen=True, slots=True)
class ObjectKind:
    name: str
    is_target: bool
    impact: str | None
    #: ANM register spelling of the ore(s) the object is drawn with (one is picked)
    ores: tuple[str, ...] = ()


KINDS: dict[str, ObjectKind] = {
    k.name: k
    for k in (
        ObjectKind("open_pit_iron", True, "high", ("Minério de Ferro",)),
        ObjectKind("quarry_sand", True, "low", ("Areia",)),
        ObjectKind("quarry_gravel", True, "low", ("Cascalho",)),
        ObjectKind("garimpo", True, "high", ("Ouro",)),
        ObjectKind("tailings_dam", True, "high", ("Minério de Ferro", "Ouro")),
        ObjectKind("water_dam", False, None),
        ObjectKind("river_bank", False, None),
        ObjectKind("town", False, None),
        ObjectKind("bare_soil", False, None),
    )
}
_MINE_KINDS = ("open_pit_iron", "quarry", "garimpo")  # "quarry" → sand or gravel
# the paper's false positives first, so even a small scene gets both
_LOOKALIKE_CYCLE = ("water_dam", "river_bank", "bare_soil", "water_dam", "river_bank", "town")


@dataclass(frozen=True)
class TruthObject:
    id: str
    kind: str
    is_target: bool
    impact: str | None
    ore: str | None
    polygon_pixels: "Polygon"  # x = column, y = row; pixel (r, c) covers [c, c+1) × [r, r+1)
    polygon_lonlat: "Polygon"


@dataclass(frozen=True)
class SceneTruth:
    path: str
    size: int
    transform: "Affine"
    crs: str
    bands: tuple[str, ...]
    objects: tuple[TruthObject, ...]

    @property
    def targets(self) -> tuple[TruthObject, ...]:
        return tuple(o for o in self.objects if o.is_target)

    @property
    def lookalikes(self) -> tuple[TruthObject, ...]:
        return tuple(o for o in self.objects if not o.is_target)

    @property
    def area_km2(self) -> float:
        return (self.size * 10 / 1000) ** 2


@dataclass(frozen=True, slots=True)
class ChipInfo:
    """Where a training chip came from: top-left pixel in its scene, and why it was drawn."""

    scene: str
    row: int
    col: int
    size: int
    label: str
    source: str  # "target", "lookalike" or "background"
    object_id: str | None
    transform: "Affine"


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True, slots=True)
class _Primitive:
    """One polygon painted with one material (optionally mixed with a second one)."""

    polygon: "Polygon"
    material: str
    layer: int  # 0 context (forest around garimpo), 1 river, 2 objects: painted in this order
    brightness: float
    tilt: tuple[float, ...]  # per-band factor (13, S2_BANDS order): each object's own hue
    mix_material: str | None = None
    mix: float = 0.0


@dataclass(frozen=True)
class _Plan:
    size: int
    objects: tuple[tuple[str, "Polygon", str | None], ...]  # (kind, footprint, ore)
    primitives: tuple[_Primitive, ...]
    wedge: tuple[int, int, float] | None  # (row corner 0/1, col corner 0/1, leg length px)
    forest_threshold: float


def default_counts(size: int) -> tuple[int, int, int]:
    """(mines, tailings dams, look-alikes) for a square scene of `size` pixels.

    About one target (mine or tailings dam) per 6 km² in small scenes, growing more slowly
    with area so that a 9216² scene (8,500 km²) holds ~150 rather than 1,400 shoulder to
    shoulder; look-alikes are half as many again.
    """
    area = (size * 10 / 1000) ** 2
    base = area / 6 / math.sqrt(1 + area / 100)
    fits = size >= 2 * TARGET_EDGE_MARGIN + MIN_OBJECT_PX
    mines = max(1, round(base * 2 / 3)) if fits else 0
    dams = max(1, round(base / 3)) if fits else 0
    return mines, dams, max(2, round(base * 1.5))


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, *key]))


def _blob(rng, cx: float, cy: float, radius: float, aspect: float = 1.0, rough: float = 0.2):
    """A star-shaped (hence always simple) irregular polygon of about 2·radius across."""
    from shapely.geometry import Polygon

    ang = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    r = np.ones_like(ang)
    for k in (2, 3, 5, 7):
        r += rough * rng.normal() / math.sqrt(k) * np.cos(k * ang + rng.uniform(0, 2 * np.pi))
    r = np.clip(r, 0.55, 1.5) * radius
    theta = rng.uniform(0, np.pi)
    x, y = r * np.cos(ang) * math.sqrt(aspect), r * np.sin(ang) / math.sqrt(aspect)
    xr = cx + x * math.cos(theta) - y * math.sin(theta)
    yr = cy + x * math.sin(theta) + y * math.cos(theta)
    return Polygon(np.column_stack([xr, yr]))


def _point_in(rng, poly, tries: int = 50):
    """A uniformly random point inside `poly` (its representative point if unlucky)."""
    from shapely.geometry import Point

    minx, miny, maxx, maxy = poly.bounds
    for _ in range(tries):
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if poly.contains(p):
            return p
    return poly.representative_point()


def _single(geom):
    """The largest polygon of `geom` (clipping can leave slivers)."""
    if geom.is_empty:
        return None
    if geom.geom_type == "Polygon":
        return geom
    polys = [g for g in getattr(geom, "geoms", []) if g.geom_type == "Polygon"]
    return max(polys, key=lambda g: g.area) if polys else None


class _Painter:
    """Collects an object's primitives with one brightness and hue per object."""

    def __init__(self, rng, spread: float = 0.12, hue: float = 0.03):
        self.rng = rng
        self.brightness = float(rng.uniform(1 - spread, 1 + spread))
        self.tilt = tuple(float(t) for t in 1 + rng.normal(0, hue, len(SPECTRA_BANDS)))
        self.prims: list[_Primitive] = []

    def add(self, poly, material: str, layer: int = 2, mix_material=None, mix=0.0, gain=1.0):
        if poly is None or poly.is_empty or poly.area < 2:
            return
        self.prims.append(
            _Primitive(poly, material, layer, self.brightness * gain, self.tilt, mix_material, mix)
        )


def _build_iron_pit(rng, cx, cy, s):
    """Nested benches alternating hematite and laterite, sometimes a lake at the bottom."""
    outer = _blob(rng, cx, cy, s / 2, aspect=rng.uniform(1, 1.6), rough=0.15)
    paint = _Painter(rng)
    paint.add(outer, "iron_bench")
    n_bench = int(np.clip(s / 35, 1, 5))
    step = s / 2 / (n_bench + 1.5)
    inner = outer
    for i in range(1, n_bench + 1):
        ring = _single(outer.buffer(-i * step))
        if ring is None or ring.area < 30:
            break
        inner = ring
        paint.add(ring, "iron_ore" if i % 2 else "iron_bench")
    if inner is not outer and rng.random() < 0.35:
        paint.add(_single(inner.buffer(-step * 0.4)), "pit_lake")
    return outer, paint.prims


def _build_quarry(rng, cx, cy, s, material):
    """A bright pit floor with a few ponds and stockpiles."""
    outer = _blob(rng, cx, cy, s / 2, aspect=rng.uniform(1, 2), rough=0.25)
    paint = _Painter(rng)
    paint.add(outer, material)
    core = _single(outer.buffer(-4))
    for _ in range(int(rng.integers(0, 3)) if core is not None else 0):
        p = _point_in(rng, core)
        pond = _single(_blob(rng, p.x, p.y, s * rng.uniform(0.06, 0.15)).intersection(core))
        paint.add(pond, "water" if rng.random() < 0.5 else "mud_pond")
    for _ in range(int(rng.integers(0, 5)) if core is not None else 0):
        p = _point_in(rng, core)
        paint.add(p.buffer(rng.uniform(2.5, 6)).intersection(core), "quarry_sand", gain=1.12)
    return outer, paint.prims


def _build_garimpo(rng, cx, cy, s):
    """Alluvial gold: bare churned soil with many small muddy ponds, in forest."""
    outer = _blob(rng, cx, cy, s / 2, aspect=rng.uniform(1.8, 2.8), rough=0.3)
    paint = _Painter(rng, spread=0.1)
    halo = _blob(rng, cx, cy, s * 0.85, aspect=rng.uniform(1.2, 2.0), rough=0.35)
    paint.add(halo.union(outer.buffer(12)), "forest", layer=0)
    paint.add(outer, "garimpo_soil", mix_material="mud_pond", mix=0.15)
    core = _single(outer.buffer(-3))
    n_ponds = int(np.clip(outer.area / 500, 3, 30)) if core is not None else 0
    for _ in range(n_ponds):
        p = _point_in(rng, core)
        pond = _blob(rng, p.x, p.y, rng.uniform(3, 9), aspect=rng.uniform(1, 2), rough=0.2)
        paint.add(_single(pond.intersection(core)), "mud_pond")
    return outer, paint.prims


def _build_dam(rng, cx, cy, s, tailings: bool):
    """A reservoir held by a straight earth wall across its outlet."""
    from shapely.geometry import LineString, Polygon
    from shapely.ops import unary_union

    res = _blob(rng, cx, cy, s / 2, aspect=rng.uniform(1, 1.7), rough=0.3)
    theta = rng.uniform(0, 2 * np.pi)
    d = np.array([math.cos(theta), math.sin(theta)])
    perp = np.array([-d[1], d[0]])
    p = np.array([cx, cy]) + d * s / 2 * rng.uniform(0.4, 0.6)
    far = 4 * s
    beyond = Polygon([p + perp * far, p + perp * far + d * far, p - perp * far + d * far,
                      p - perp * far])
    res = _single(res.difference(beyond))
    if res is None:
        return None, []
    chord = res.buffer(1).intersection(LineString([p - perp * far, p + perp * far]))
    if chord.is_empty:
        return None, []
    along = [float(np.dot(np.array(c) - p, perp)) for c in _coords(chord)]
    width = rng.uniform(5, 10)
    wall = LineString([p + perp * (min(along) - 4), p + perp * (max(along) + 4)]).buffer(
        width / 2, cap_style="flat"
    )
    footprint = unary_union([res, wall])
    if footprint.geom_type != "Polygon":
        return None, []
    paint = _Painter(rng)
    if tailings:
        paint.add(res, "tailings", mix_material="tailings_beach", mix=0.1)
        beach = res.intersection(LineString([p - perp * far, p + perp * far]).buffer(
            s * rng.uniform(0.08, 0.25)))
        paint.add(_single(beach), "tailings_beach")
        paint.add(wall, "dam_wall")
    else:
        paint.add(res, "water")
        paint.add(wall, "dam_wall", mix_material="pasture", mix=0.35)
    return footprint, paint.prims


def _coords(geom) -> list[tuple[float, float]]:
    if hasattr(geom, "geoms"):
        return [c for g in geom.geoms for c in _coords(g)]
    return list(geom.coords)


def _build_town(rng, cx, cy, s):
    outer = _blob(rng, cx, cy, s / 2, aspect=rng.uniform(1, 1.8), rough=0.35)
    paint = _Painter(rng, spread=0.08)
    paint.add(outer, "town", mix_material="pasture", mix=0.35)
    return outer, paint.prims


def _build_bare_field(rng, cx, cy, s):
    from shapely import affinity
    from shapely.geometry import box

    w, h = s, s * rng.uniform(0.4, 1.0)
    field_ = affinity.rotate(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2),
                             rng.uniform(0, 180), origin=(cx, cy))
    paint = _Painter(rng, spread=0.1)
    paint.add(field_, "bare_soil")
    return field_, paint.prims


def _river(rng, size: int):
    """A meandering river across the scene: (channel polygon, centreline points, width)."""
    from shapely.geometry import LineString

    width = rng.uniform(8, 18)
    t = np.arange(-60.0, size + 60.0, 3.0)
    if size < 1200:
        # small scenes: keep the river in the edge band so targets still fit in the middle
        amp = rng.uniform(8, 20)
        offset = rng.uniform(width + amp, TARGET_EDGE_MARGIN - width - amp - 20)
        offset = offset if rng.random() < 0.5 else size - offset
        waves = [(amp, rng.uniform(120, 260))]
    else:
        offset = rng.uniform(0.15, 0.85) * size
        waves = [(rng.uniform(0.02, 0.05) * size, rng.uniform(0.3, 0.7) * size),
                 (rng.uniform(20, 60), rng.uniform(150, 400))]
    y = np.full_like(t, offset)
    for amp, wavelength in waves:
        y += amp * np.sin(2 * np.pi * t / wavelength + rng.uniform(0, 2 * np.pi))
    pts = np.column_stack([t, y]) if rng.random() < 0.5 else np.column_stack([y, t])
    return LineString(pts).buffer(width / 2), pts, width


def _sand_bar(rng, pts: np.ndarray, width: float):
    """An elongated sand bar on the inner bank of a bend (or a random bank if straight)."""
    from shapely import affinity
    from shapely.geometry import Point

    i = int(rng.integers(2, len(pts) - 2))
    tangent = pts[i + 1] - pts[i - 1]
    tangent /= np.linalg.norm(tangent)
    normal = np.array([-tangent[1], tangent[0]])
    bend = pts[i + 1] - 2 * pts[i] + pts[i - 1]
    side = np.sign(np.dot(bend, normal)) or (1.0 if rng.random() < 0.5 else -1.0)
    a, b = rng.uniform(18, 60), rng.uniform(5, 12)
    centre = pts[i] + side * normal * (width / 2 + b * 0.4)
    bar = affinity.scale(Point(centre).buffer(1, 24), a, b)
    bar = affinity.rotate(bar, math.degrees(math.atan2(tangent[1], tangent[0])),
                          origin=tuple(centre))
    paint = _Painter(rng, spread=0.08)
    paint.add(bar, "sand_bar", mix_material="river_water", mix=0.1)
    return bar, paint.prims


class _Placer:
    """Accepts footprints that stay inside their margin and clear of everything placed."""

    def __init__(self, size: int, wedge_poly, river_poly, gap: float = 12.0):
        self.size = size
        self.wedge = wedge_poly
        self.river = river_poly
        self.gap = gap
        self.placed: list = []

    def fits(self, poly, margin: float, avoid_river: bool = True) -> bool:
        minx, miny, maxx, maxy = poly.bounds
        if minx < margin or miny < margin or maxx > self.size - margin or maxy > self.size - margin:
            return False
        if not poly.is_valid:
            return False
        if self.wedge is not None and poly.distance(self.wedge) < margin:
            return False
        if avoid_river and self.river is not None and poly.distance(self.river) < 25:
            return False
        return not any(
            q.bounds[0] - self.gap < maxx and minx - self.gap < q.bounds[2]
            and q.bounds[1] - self.gap < maxy and miny - self.gap < q.bounds[3]
            and q.distance(poly) < self.gap
            for q in self.placed
        )


def _build(kind: str, rng, cx: float, cy: float, s: float):
    if kind == "open_pit_iron":
        return _build_iron_pit(rng, cx, cy, s)
    if kind in ("quarry_sand", "quarry_gravel"):
        return _build_quarry(rng, cx, cy, s, kind)
    if kind == "garimpo":
        return _build_garimpo(rng, cx, cy, s)
    if kind in ("tailings_dam", "water_dam"):
        return _build_dam(rng, cx, cy, s, tailings=kind == "tailings_dam")
    if kind == "town":
        return _build_town(rng, cx, cy, s)
    if kind == "bare_soil":
        return _build_bare_field(rng, cx, cy, s)
    raise ValueError(f"no builder for object kind {kind!r}")


def _place(rng, placer: _Placer, kind: str, margin: float, smin: float, smax: float):
    """Try random positions and shrinking sizes; (footprint, primitives) or None."""
    size = placer.size
    smax = min(smax, size - 2 * margin - 4)
    if smax < smin:
        return None
    s = math.exp(rng.uniform(math.log(smin), math.log(smax)))
    for _ in range(60):
        half = s / 2
        cx = rng.uniform(margin + half, size - margin - half)
        cy = rng.uniform(margin + half, size - margin - half)
        footprint, prims = _build(kind, rng, cx, cy, s)
        if footprint is not None and placer.fits(footprint, margin):
            return footprint, prims
        s = max(smin, s * 0.95)
    return None


def _kind_sequence(rng, n: int, cycle: Sequence[str]) -> list[str]:
    kinds = []
    while len(kinds) < n:
        kinds.extend(cycle[i] for i in rng.permutation(len(cycle)))
    return kinds[:n]


def _plan_scene(
    size: int,
    seed: int,
    *,
    n_mines: int | None = None,
    n_dams: int | None = None,
    n_lookalikes: int | None = None,
    nodata_fraction: float = 0.0,
) -> _Plan:
    """Place the river, targets and look-alikes (pixel coordinates), deterministically."""
    from shapely.geometry import Polygon

    d_mines, d_dams, d_look = default_counts(size)
    n_mines = d_mines if n_mines is None else n_mines
    n_dams = d_dams if n_dams is None else n_dams
    n_look = d_look if n_lookalikes is None else n_lookalikes
    rng = _rng(seed, 0)

    wedge = wedge_poly = None
    if nodata_fraction > 0:
        corner = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
        leg = size * math.sqrt(2 * nodata_fraction)
        wedge = (*corner, leg)
        x0, y0 = corner[1] * size, corner[0] * size
        sx, sy = (1 if corner[1] == 0 else -1), (1 if corner[0] == 0 else -1)
        wedge_poly = Polygon([(x0, y0), (x0 + sx * leg, y0), (x0, y0 + sy * leg)])

    river_poly, river_pts, river_w = _river(rng, size)
    paint = _Painter(rng, spread=0.05)
    paint.add(river_poly, "river_water", layer=1)
    prims: list[_Primitive] = list(paint.prims)
    placer = _Placer(size, wedge_poly, river_poly)
    objects: list[tuple[str, Any, str | None]] = []

    look_kinds = _kind_sequence(rng, n_look, _LOOKALIKE_CYCLE[:2]) if n_look <= 2 else (
        list(_LOOKALIKE_CYCLE[:2]) + _kind_sequence(rng, n_look - 2, _LOOKALIKE_CYCLE))
    n_bars = look_kinds.count("river_bank")
    for _ in range(n_bars * 20):
        if sum(k == "river_bank" for k, _, _ in objects) == n_bars:
            break
        bar, bar_prims = _sand_bar(rng, river_pts, river_w)
        if placer.fits(bar, 5, avoid_river=False):
            placer.placed.append(bar)
            objects.append(("river_bank", bar, None))
            prims.extend(bar_prims)

    target_kinds = [
        ("quarry_sand" if rng.random() < 0.5 else "quarry_gravel") if k == "quarry" else k
        for k in _kind_sequence(rng, n_mines, _MINE_KINDS)
    ] + ["tailings_dam"] * n_dams
    others = [k for k in look_kinds if k != "river_bank"]
    for kind in target_kinds + others:
        target = KINDS[kind].is_target
        margin = TARGET_EDGE_MARGIN if target else 8
        smin, smax = ((MIN_OBJECT_PX, MAX_OBJECT_PX) if kind != "bare_soil" else (30, 150))
        placed = _place(rng, placer, kind, margin, smin, smax)
        if placed is None:
            log.debug("no room for a %s in a %d px scene (seed %d)", kind, size, seed)
            continue
        footprint, obj_prims = placed
        placer.placed.append(footprint)
        ores = KINDS[kind].ores
        objects.append((kind, footprint, str(rng.choice(ores)) if ores else None))
        prims.extend(obj_prims)

    order = sorted(range(len(prims)), key=lambda i: (prims[i].layer, i))
    return _Plan(size, tuple(objects), tuple(prims[i] for i in order), wedge,
                 float(rng.uniform(-0.4, 0.5)))


def _truth_objects(plan: _Plan, transform: "Affine") -> tuple[TruthObject, ...]:
    out = []
    for i, (kind, poly, ore) in enumerate(plan.objects):
        k, px = KINDS[kind], poly.simplify(0.25)
        out.append(TruthObject(f"obj-{i + 1:04d}", kind, k.is_target, k.impact, ore, px,
                               _to_lonlat(px, transform)))
    return tuple(out)


def _to_lonlat(poly_px, transform):
    from shapely import affinity
    from shapely.geometry.polygon import orient

    t = transform
    return orient(affinity.affine_transform(poly_px, [t.a, t.b, t.d, t.e, t.c, t.f]), 1.0)


def _to_pixels(poly_ll, transform):
    from shapely import affinity

    t = ~transform
    return affinity.affine_transform(poly_ll, [t.a, t.b, t.d, t.e, t.c, t.f])


def scene_transform(origin_lonlat: tuple[float, float]) -> "Affine":
    """North-up 10 m (at the equator) grid whose top-left corner is `origin_lonlat`."""
    from affine import Affine

    return Affine(PIXEL_DEG, 0.0, origin_lonlat[0], 0.0, -PIXEL_DEG, origin_lonlat[1])


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Fields:
    """Smooth noise, one node every FIELD_STEP px, ~unit variance: shared by all blocks."""

    forest: np.ndarray
    soil: np.ndarray
    texture: np.ndarray
    vigour: np.ndarray
    haze: np.ndarray


def _fractal(rng, n: int, octaves: Sequence[tuple[int, float]]) -> np.ndarray:
    """Sum of random grids `cell` field nodes apart, cubic-interpolated, normalised."""
    out = np.zeros((n, n), np.float32)
    for cell, amp in octaves:
        if cell <= 1:
            out += amp * rng.standard_normal((n, n), dtype=np.float32)
            continue
        coarse = rng.standard_normal((n // cell + 4,) * 2, dtype=np.float32)
        out += amp * _catmull_rom(_catmull_rom(coarse, n, cell).T, n, cell).T
    out -= out.mean()
    out /= out.std() + 1e-6
    return out


def _catmull_rom(a: np.ndarray, n: int, cell: int) -> np.ndarray:
    """Rows 0…n-1 of `a` upsampled by `cell` along axis 0 (a C¹ cubic, separable)."""
    pos = np.arange(n, dtype=np.float32) / cell
    i = pos.astype(np.int64) + 1
    t = (pos - (i - 1))[:, None]
    t2, t3 = t * t, t * t * t
    return (
        a[i - 1] * ((-t3 + 2 * t2 - t) / 2)
        + a[i] * ((3 * t3 - 5 * t2 + 2) / 2)
        + a[i + 1] * ((-3 * t3 + 4 * t2 + t) / 2)
        + a[i + 2] * ((t3 - t2) / 2)
    )


def _make_fields(size: int, seed: int) -> _Fields:
    rng = _rng(seed, 1)
    n = size // FIELD_STEP + 3
    return _Fields(
        forest=_fractal(rng, n, [(512, 1.0), (128, 0.8), (32, 0.5), (8, 0.25), (2, 0.12)]),
        soil=_fractal(rng, n, [(64, 1.0), (16, 0.5), (4, 0.2)]),
        texture=_fractal(rng, n, [(16, 0.6), (4, 0.45), (1, 0.35)]),
        vigour=_fractal(rng, n, [(128, 1.0), (16, 0.5)]),
        haze=_fractal(rng, n, [(1024, 1.0), (256, 0.4)]),
    )


def _upsample(low: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Bilinear values of a field at pixel centres rows [r0, r1) × cols [c0, c1)."""

    def axis(a0, a1):
        pos = (np.arange(a0, a1, dtype=np.float32) + 0.5) / FIELD_STEP
        i = pos.astype(np.int64)
        return i, (pos - i).astype(np.float32)

    ri, rt = axis(r0, r1)
    ci, ct = axis(c0, c1)
    rows = low[ri] * (1 - rt)[:, None] + low[ri + 1] * rt[:, None]
    return rows[:, ci] * (1 - ct) + rows[:, ci + 1] * ct


def _sigmoid(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit  # no overflow warning for very negative x

    return expit(x)


def _spectrum(material: str, band_idx: np.ndarray, gain: float = 1.0, tilt=None) -> np.ndarray:
    s = np.asarray(SPECTRA[material], np.float32)[band_idx] * np.float32(gain)
    if tilt is not None:
        s = s * np.asarray(tilt, np.float32)[band_idx]
    return s[:, None, None]


def _alpha(poly, r0: int, r1: int, c0: int, c1: int):
    """Coverage of `poly` over the block, edge pixels mixed by a 3×3 mean; None if outside.

    The mask is rasterised one pixel beyond the window so the mean is exact at the block
    edge: neighbouring blocks then agree, and no seam appears.
    """
    from affine import Affine
    from rasterio.features import rasterize
    from scipy.ndimage import uniform_filter

    minx, miny, maxx, maxy = poly.bounds
    wr0, wr1 = max(r0, math.floor(miny) - 1), min(r1, math.ceil(maxy) + 1)
    wc0, wc1 = max(c0, math.floor(minx) - 1), min(c1, math.ceil(maxx) + 1)
    if wr0 >= wr1 or wc0 >= wc1:
        return None
    mask = rasterize(
        [(poly, 1)], out_shape=(wr1 - wr0 + 2, wc1 - wc0 + 2),
        transform=Affine.translation(wc0 - 1, wr0 - 1), fill=0, dtype="uint8",
    )
    if not mask.any():
        return None
    a = uniform_filter(mask.astype(np.float32), 3, mode="constant")[1:-1, 1:-1]
    return (slice(wr0 - r0, wr1 - r0), slice(wc0 - c0, wc1 - c0)), a


def _hash_noise(seed: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Zero-mean unit-variance noise that depends only on (seed, row, col): splitmix64."""
    rows = np.arange(r0, r1, dtype=np.int64).astype(np.uint64)[:, None]
    cols = np.arange(c0, c1, dtype=np.int64).astype(np.uint64)[None, :]
    x = (rows << np.uint64(32)) ^ cols ^ np.uint64((seed * 0x9E3779B97F4A7C15) & (2**64 - 1))
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    u = (x >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
    return (u - np.float32(0.5)) * np.float32(math.sqrt(12))


def _coarsen(a: np.ndarray, f: int) -> np.ndarray:
    """Average f×f cells and repeat them: a 20 m / 60 m band seen on the 10 m grid.

    Blocks start on multiples of 6 px, so the cells line up across blocks.
    """
    if f == 1:
        return a
    h, w = a.shape
    ph, pw = -h % f, -w % f
    p = np.pad(a, ((0, ph), (0, pw)), mode="edge") if ph or pw else a
    m = p.reshape(p.shape[0] // f, f, p.shape[1] // f, f).mean(axis=(1, 3), dtype=np.float32)
    full = np.broadcast_to(m[:, None, :, None], (m.shape[0], f, m.shape[1], f))
    return full.reshape(p.shape)[:h, :w].copy()


def _render_block(plan: _Plan, fields: _Fields, prim_bounds: np.ndarray, band_idx: np.ndarray,
                  seed: int, block: tuple[int, int], r0: int, r1: int, c0: int, c1: int):
    """uint16 (bands, rows, cols) for one block: background, objects, haze, noise, no-data."""
    from scipy.ndimage import gaussian_filter

    rng = _rng(seed, 2, *block)
    h, w = r1 - r0, c1 - c0
    # fine grain: smoothed noise of the global pixel position, with a halo, so no seam
    halo = 4
    grain = gaussian_filter(_hash_noise(seed, r0 - halo, r1 + halo, c0 - halo, c1 + halo), 1.0,
                            truncate=4.0)[halo:-halo, halo:-halo] * 2.0
    tex = 0.75 * _upsample(fields.texture, r0, r1, c0, c1) + 0.4 * grain

    forest = _upsample(fields.forest, r0, r1, c0, c1) + 0.08 * grain
    wf = _sigmoid((forest - plan.forest_threshold) / 0.05)
    ws = (1 - wf) * _sigmoid((_upsample(fields.soil, r0, r1, c0, c1) - 1.4) / 0.15)
    wp = 1 - wf - ws
    vig = 0.06 * _upsample(fields.vigour, r0, r1, c0, c1)
    af = wf * (1 + TEXTURE["forest"] * tex)
    ap = wp * (1 + TEXTURE["pasture"] * tex)
    weights = np.stack([af, ap, ws * (1 + TEXTURE["bare_soil"] * tex), af * vig, ap * vig])
    # healthier vegetation: brighter red edge / NIR, darker visible and SWIR
    nir = np.array([0.72 < S2_BANDS[b].centre_um < 1.0 for b in SPECTRA_BANDS])[band_idx]
    gain = np.where(nir, 1.0, -0.5).astype(np.float32)
    sf, sp, ss = (_spectrum(m, band_idx)[:, 0, 0] for m in ("forest", "pasture", "bare_soil"))
    mix = np.stack([sf, sp, ss, gain * sf, gain * sp], axis=1)  # (bands, 5)
    img = (mix @ weights.reshape(5, -1)).reshape(len(band_idx), h, w)

    hits = np.nonzero(
        (prim_bounds[:, 0] < c1 + 1) & (prim_bounds[:, 2] > c0 - 1)
        & (prim_bounds[:, 1] < r1 + 1) & (prim_bounds[:, 3] > r0 - 1)
    )[0]
    for i in hits:
        p = plan.primitives[i]
        cov = _alpha(p.polygon, r0, r1, c0, c1)
        if cov is None:
            continue
        win, a = cov
        t = 1 + TEXTURE[p.material] * tex[win]
        layer = _spectrum(p.material, band_idx, p.brightness, p.tilt) * t
        if p.mix_material is not None:
            f = np.clip(p.mix + 0.3 * grain[win], 0, 1)
            other = _spectrum(p.mix_material, band_idx, p.brightness, p.tilt) * t
            layer = layer * (1 - f) + other * f
        img[:, win[0], win[1]] = img[:, win[0], win[1]] * (1 - a) + layer * a

    haze = _sigmoid(_upsample(fields.haze, r0, r1, c0, c1))
    out = np.empty(img.shape, np.uint16)
    for k, b in enumerate(band_idx):
        band = img[k]
        band += np.float32(_HAZE[b]) * haze
        band = _coarsen(band, S2_BANDS[SPECTRA_BANDS[b]].resolution_m // 10)
        band += rng.standard_normal((h, w), dtype=np.float32) * np.float32(_NOISE[b])
        band += 0.5
        np.clip(band, 1, 65535, out=band)  # 0 is reserved for no-data
        out[k] = band
    if plan.wedge is not None:
        corner_r, corner_c, leg = plan.wedge
        rr = np.arange(r0, r1)[:, None] + 0.5
        cc = np.arange(c0, c1)[None, :] + 0.5
        rr = rr if corner_r == 0 else plan.size - rr
        cc = cc if corner_c == 0 else plan.size - cc
        out[:, (rr + cc) < leg] = NODATA
    return out


def _blocks(size: int) -> Iterator[tuple[tuple[int, int], int, int, int, int]]:
    for bi, r0 in enumerate(range(0, size, BLOCK)):
        for bj, c0 in enumerate(range(0, size, BLOCK)):
            yield (bi, bj), r0, min(size, r0 + BLOCK), c0, min(size, c0 + BLOCK)


def synthesize_scene(
    path: str | os.PathLike,
    *,
    size: int,
    seed: int,
    bands: Sequence[str] = DEFAULT_BANDS,
    origin_lonlat: tuple[float, float] = (-44.0, -20.0),
    n_mines: int | None = None,
    n_dams: int | None = None,
    n_lookalikes: int | None = None,
    nodata_fraction: float = 0.0,
) -> SceneTruth:
    """Write a synthetic L1C scene (tiled deflate GeoTIFF, uint16) and return its truth.

    The same arguments give the same bytes. Memory stays at one 768² block plus the plan
    and the low-resolution fields, whatever the size.
    """
    import rasterio
    from rasterio.windows import Window

    from .log import progress

    try:
        bands = check_bands(list(bands))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if size < 64:
        raise InputError(f"scene size {size} px is too small: use at least 64")
    if not 0 <= nodata_fraction <= 0.5:
        raise InputError(f"nodata_fraction {nodata_fraction} must be between 0 and 0.5")
    for name, n in (("n_mines", n_mines), ("n_dams", n_dams), ("n_lookalikes", n_lookalikes)):
        if n is not None and n < 0:
            raise InputError(f"{name} must be ≥ 0, got {n}")

    transform = scene_transform(origin_lonlat)
    plan = _plan_scene(size, seed, n_mines=n_mines, n_dams=n_dams, n_lookalikes=n_lookalikes,
                      nodata_fraction=nodata_fraction)
    fields = _make_fields(size, seed)
    band_idx = np.array([SPECTRA_BANDS.index(b) for b in bands])
    prim_bounds = np.array([p.polygon.bounds for p in plan.primitives]).reshape(-1, 4)

    path = Path(path)
    profile = dict(
        driver="GTiff", width=size, height=size, count=len(bands), dtype="uint16", crs=CRS,
        transform=transform, nodata=NODATA, tiled=True, blockxsize=256, blockysize=256,
        compress="deflate", predictor=2, zlevel=1, interleave="band", bigtiff="IF_SAFER",
        num_threads=2,
    )
    blocks = list(_blocks(size))
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for i, name in enumerate(bands, start=1):
            dst.set_band_description(i, name)
        dst.update_tags(SYNTHETIC="minescan.synth", SEED=str(seed))
        for key, r0, r1, c0, c1 in progress(blocks, len(blocks), "synthesising scene"):
            arr = _render_block(plan, fields, prim_bounds, band_idx, seed, key, r0, r1, c0, c1)
            dst.write(arr, window=Window(c0, r0, c1 - c0, r1 - r0))

    truth = SceneTruth(str(path), size, transform, CRS, bands, _truth_objects(plan, transform))
    log.info("synthesised %s: %d px, %d targets, %d look-alikes", path, size,
             len(truth.targets), len(truth.lookalikes))
    return truth


# --------------------------------------------------------------------------- truth I/O


def write_truth_geojson(truth: SceneTruth, path: str | os.PathLike) -> Path:
    """RFC 7946 FeatureCollection (EPSG:4326, counter-clockwise exteriors) of the truth.

    The scene's grid travels as a foreign member so that pixel polygons can be rebuilt.
    """
    from shapely.geometry import mapping

    features = [
        {
            "type": "Feature",
            "id": o.id,
            "geometry": mapping(o.polygon_lonlat),
            "properties": {"id": o.id, "kind": o.kind, "is_target": o.is_target,
                           "impact": o.impact, "ore": o.ore},
        }
        for o in truth.objects
    ]
    doc = {
        "type": "FeatureCollection",
        "features": features,
        "scene": {"path": Path(truth.path).name, "size": truth.size,
                  "transform": list(truth.transform)[:6], "bands": list(truth.bands)},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def read_truth_geojson(path: str | os.PathLike, transform: "Affine | None" = None
                       ) -> tuple[TruthObject, ...]:
    """Truth objects from `write_truth_geojson`; pixel polygons from `transform` or the file."""
    from affine import Affine
    from shapely.geometry import shape

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if transform is None:
            if "scene" not in doc:
                raise InputError(f"truth GeoJSON {path} does not record its scene grid: pass "
                                 "the scene's transform (or use load_scene_truth)")
            transform = Affine(*doc["scene"]["transform"])
        objects = []
        for feat in doc["features"]:
            props = feat["properties"]
            poly = shape(feat["geometry"])
            objects.append(TruthObject(
                str(props["id"]), str(props["kind"]), bool(props["is_target"]),
                props.get("impact"), props.get("ore"), _to_pixels(poly, transform), poly,
            ))
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"cannot read truth GeoJSON {path}: {exc}; write it with write_truth_geojson"
        ) from None
    return tuple(objects)


def load_scene_truth(scene_path: str | os.PathLike, truth_path: str | os.PathLike) -> SceneTruth:
    """A `SceneTruth` from a scene GeoTIFF and its truth GeoJSON (grid taken from the TIFF)."""
    import rasterio

    with rasterio.open(scene_path) as src:
        if src.width != src.height:
            raise InputError(f"{scene_path} is {src.width}×{src.height}: synthetic scenes are square")
        bands = tuple(src.descriptions)
        transform, size, crs = src.transform, src.width, src.crs.to_string()
    return SceneTruth(str(scene_path), size, transform, crs, bands,
                      read_truth_geojson(truth_path, transform))


def make_training_scenes(
    out_dir: str | os.PathLike, n_scenes: int, size: int, seed: int,
    bands: Sequence[str] = DEFAULT_BANDS,
) -> tuple[SceneTruth, ...]:
    """`n_scenes` scenes (each with a `.truth.geojson` beside it) at distinct origins."""
    out_dir = Path(out_dir)
    truths = []
    for i in range(n_scenes):
        scene_seed = int(np.random.SeedSequence([seed & 0xFFFFFFFF, 7, i]).generate_state(1)[0])
        origin = (-44.0 + i * size * PIXEL_DEG * 1.1, -20.0)
        truth = synthesize_scene(out_dir / f"scene_{i:03d}.tif", size=size, seed=scene_seed,
                                 bands=bands, origin_lonlat=origin)
        write_truth_geojson(truth, out_dir / f"scene_{i:03d}.truth.geojson")
        truths.append(truth)
    return tuple(truths)


# --------------------------------------------------------------------------- chips


@dataclass
class _SceneIndex:
    """Targets of one scene in an STRtree, for fast "does this window touch a target"."""

    truth: SceneTruth
    targets: tuple[TruthObject, ...] = field(init=False)
    tree: Any = field(init=False)

    def __post_init__(self):
        from shapely import STRtree

        self.targets = self.truth.targets
        self.tree = STRtree([o.polygon_pixels for o in self.targets])

    def target_area(self, win) -> float:
        return sum(self.targets[i].polygon_pixels.intersection(win).area
                   for i in self.tree.query(win))

    def touches_target(self, win) -> bool:
        return len(self.tree.query(win.buffer(2), predicate="intersects")) > 0


def _as_truths(truth_or_scene) -> tuple[SceneTruth, ...]:
    if isinstance(truth_or_scene, SceneTruth):
        return (truth_or_scene,)
    truths = tuple(truth_or_scene)
    if not truths or not all(isinstance(t, SceneTruth) for t in truths):
        raise InputError("pass a SceneTruth or a non-empty sequence of them (see load_scene_truth)")
    return truths


Proposal = tuple[int, int, int, str, str | None]  # scene index, row, col, source, object id


def _draw(n: int, propose: Callable[[], Proposal | None], readers, truths, size, label,
          what: str) -> list[tuple[np.ndarray, ChipInfo]]:
    """Accept proposals whose window holds no no-data pixel, until `n` are found."""
    from affine import Affine
    from rasterio.windows import Window

    out: list[tuple[np.ndarray, ChipInfo]] = []
    for _ in range(max(200, 60 * n)):
        if len(out) == n:
            break
        cand = propose()
        if cand is None:
            continue
        si, row, col, source, obj = cand
        chip = readers(si).read(window=Window(col, row, size, size))
        if (chip == NODATA).any():
            continue
        t = truths[si]
        out.append((np.moveaxis(chip, 0, -1), ChipInfo(
            t.path, row, col, size, label, source, obj, t.transform @ Affine.translation(col, row))))
    if len(out) < n:
        raise InputError(
            f"found only {len(out)} of {n} {what} windows of {size} px in the given scenes; "
            "use more or larger scenes"
        )
    return out


def _open_readers(stack: ExitStack, truths: Sequence[SceneTruth]):
    import rasterio

    cache: dict[int, Any] = {}

    def reader(i: int):
        if i not in cache:
            cache[i] = stack.enter_context(rasterio.open(truths[i].path))
        return cache[i]

    return reader


def _window_box(row: int, col: int, size: int):
    from shapely.geometry import box

    return box(col, row, col + size, row + size)


def _finish(parts: list[list[tuple[np.ndarray, ChipInfo]]], labels: Sequence[int], rng,
            size: int, bands):
    items = [(x, y, info) for part, y in zip(parts, labels) for x, info in part]
    order = rng.permutation(len(items))
    if not items:
        return np.zeros((0, size, size, len(bands)), np.uint16), np.zeros(0, np.int64), ()
    x = np.stack([items[i][0] for i in order])
    y = np.array([items[i][1] for i in order], np.int64)
    return x, y, tuple(items[i][2] for i in order)


def sample_discovery_chips(
    truth_or_scene: SceneTruth | Sequence[SceneTruth],
    n: int,
    seed: int,
    size: int = 201,
    *,
    min_target_fraction: float = 0.01,
) -> tuple[np.ndarray, np.ndarray, tuple[ChipInfo, ...]]:
    """Balanced mine / not_mine chips: x uint16 (n, size, size, B), y 1 = mine, 0 = not_mine.

    Positives hold ≥ `min_target_fraction` of their pixels on targets, anywhere in the
    chip. Half the negatives are centred near look-alikes (dams, river banks, towns, bare
    soil), half are random background; no negative touches a target, no chip has no-data.
    """
    truths = _as_truths(truth_or_scene)
    idx = [_SceneIndex(t) for t in truths]
    rng = np.random.default_rng(_rng(seed, 3).integers(2**63))
    targets = [(si, o) for si, t in enumerate(truths) for o in t.targets if t.size >= size]
    looks = [(si, o) for si, t in enumerate(truths) for o in t.lookalikes if t.size >= size]
    if not targets:
        raise InputError(f"no target in the given scenes fits a {size} px chip")

    def positive() -> Proposal | None:
        si, o = targets[rng.integers(len(targets))]
        lim = truths[si].size - size
        minx, miny, maxx, maxy = o.polygon_pixels.bounds
        rlo, rhi = max(0, math.ceil(miny) - size + 1), min(lim, math.floor(maxy) - 1)
        clo, chi = max(0, math.ceil(minx) - size + 1), min(lim, math.floor(maxx) - 1)
        if rlo > rhi or clo > chi:
            return None
        row, col = int(rng.integers(rlo, rhi + 1)), int(rng.integers(clo, chi + 1))
        if idx[si].target_area(_window_box(row, col, size)) < min_target_fraction * size * size:
            return None
        return si, row, col, "target", o.id

    def near_lookalike() -> Proposal | None:
        si, o = looks[rng.integers(len(looks))]
        c, lim = o.polygon_pixels.centroid, truths[si].size - size
        # clamped, not rejected: look-alikes near the edge would otherwise never be drawn
        row = int(np.clip(round(c.y - size / 2 + rng.normal(0, size / 6)), 0, lim))
        col = int(np.clip(round(c.x - size / 2 + rng.normal(0, size / 6)), 0, lim))
        return _background(si, row, col, "lookalike", o.id)

    def background() -> Proposal | None:
        si = int(rng.integers(len(truths)))
        lim = truths[si].size - size
        if lim < 0:
            return None
        return _background(si, int(rng.integers(lim + 1)), int(rng.integers(lim + 1)),
                           "background", None)

    def _background(si, row, col, source, obj) -> Proposal | None:
        lim = truths[si].size - size
        if not (0 <= row <= lim and 0 <= col <= lim):
            return None
        if idx[si].touches_target(_window_box(row, col, size)):
            return None
        return si, row, col, source, obj

    n_pos = n // 2
    n_hard = (n - n_pos) // 2 if looks else 0
    n_rand = n - n_pos - n_hard
    with ExitStack() as stack:
        read = _open_readers(stack, truths)
        pos = _draw(n_pos, positive, read, truths, size, "mine", "mine")
        hard = _draw(n_hard, near_lookalike, read, truths, size, "not_mine", "look-alike")
        rand = _draw(n_rand, background, read, truths, size, "not_mine", "background")
    return _finish([pos, hard + rand], [1, 0], rng, size, truths[0].bands)


IMPACT_LABELS = ("high", "low", "no_ore")  # = minescan.models.IMPACT_CLASSES


def sample_impact_patches(
    truth_or_scene: SceneTruth | Sequence[SceneTruth],
    n: int,
    seed: int,
    size: int = 21,
    *,
    min_inside: float = 0.6,
) -> tuple[np.ndarray, np.ndarray, tuple[ChipInfo, ...]]:
    """Balanced impact patches: x uint16 (n, size, size, B), y index into IMPACT_LABELS.

    high / low patches are centred on a target of that impact with ≥ `min_inside` of the
    patch inside it; no_ore patches are centred on look-alikes (half) or background (half)
    and touch no target.
    """
    if size % 2 == 0:
        raise InputError(f"impact patch size must be odd (it is centred on a pixel), got {size}")
    truths = _as_truths(truth_or_scene)
    idx = [_SceneIndex(t) for t in truths]
    rng = np.random.default_rng(_rng(seed, 4).integers(2**63))
    half = size // 2
    by_impact = {imp: [(si, o) for si, t in enumerate(truths) for o in t.targets
                       if o.impact == imp] for imp in ("high", "low")}
    looks = [(si, o) for si, t in enumerate(truths) for o in t.lookalikes]

    def in_scene(si, row, col) -> bool:
        lim = truths[si].size - size
        return 0 <= row <= lim and 0 <= col <= lim

    def on_target(impact: str) -> Callable[[], Proposal | None]:
        from shapely.geometry import Point

        def propose() -> Proposal | None:
            si, o = by_impact[impact][rng.integers(len(by_impact[impact]))]
            minx, miny, maxx, maxy = o.polygon_pixels.bounds
            r, c = int(rng.integers(math.floor(miny), math.ceil(maxy))), int(
                rng.integers(math.floor(minx), math.ceil(maxx)))
            row, col = r - half, c - half
            if not in_scene(si, row, col) or not o.polygon_pixels.contains(Point(c + .5, r + .5)):
                return None
            inside = o.polygon_pixels.intersection(_window_box(row, col, size)).area
            return (si, row, col, "target", o.id) if inside >= min_inside * size * size else None

        return propose

    def no_ore() -> Proposal | None:
        if looks and rng.random() < 0.5:
            si, o = looks[rng.integers(len(looks))]
            p = _point_in(rng, o.polygon_pixels, tries=5)
            row, col, source, obj = int(p.y) - half, int(p.x) - half, "lookalike", o.id
        else:
            si = int(rng.integers(len(truths)))
            lim = truths[si].size - size
            row, col, source, obj = int(rng.integers(lim + 1)), int(rng.integers(lim + 1)), \
                "background", None
        if not in_scene(si, row, col) or idx[si].touches_target(_window_box(row, col, size)):
            return None
        return si, row, col, source, obj

    counts = [n // 3 + (1 if i < n % 3 else 0) for i in range(3)]
    for impact, k in zip(("high", "low"), counts):
        if k and not by_impact[impact]:
            raise InputError(
                f"no '{impact}'-impact target in the given scenes; use more or larger scenes"
            )
    with ExitStack() as stack:
        read = _open_readers(stack, truths)
        parts = [
            _draw(counts[0], on_target("high"), read, truths, size, "high", "high-impact"),
            _draw(counts[1], on_target("low"), read, truths, size, "low", "low-impact"),
            _draw(counts[2], no_ore, read, truths, size, "no_ore", "no-ore"),
        ]
    return _finish(parts, [0, 1, 2], rng, size, truths[0].bands)


def write_chip_folders(
    out_dir: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    transform_fn: Callable[[int], "Affine"] | None = None,
    *,
    bands: Sequence[str] = DEFAULT_BANDS,
    seed: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """The authors' layout: OUT/<class>/<class>_00001.tif (georeferenced) and OUT/chips.json.

    `transform_fn(i)` gives chip i's transform; without it every chip sits at the default
    scene origin (the chips are still valid GeoTIFFs, but not where they came from).
    """
    import rasterio

    if x.ndim != 4 or len(x) != len(y) or x.shape[-1] != len(bands):
        raise InputError(
            f"chips of shape {x.shape} with {len(y)} labels and {len(bands)} bands do not match: "
            "expected (n, rows, cols, bands)"
        )
    out_dir = Path(out_dir)
    counts = {name: 0 for name in class_names}
    default = scene_transform((-44.0, -20.0))
    for i, (chip, label) in enumerate(zip(x, y)):
        name = class_names[int(label)]
        counts[name] += 1
        path = out_dir / name / f"{name}_{counts[name]:05d}.tif"
        path.parent.mkdir(parents=True, exist_ok=True)
        profile = dict(
            driver="GTiff", width=chip.shape[1], height=chip.shape[0], count=len(bands),
            dtype="uint16", crs=CRS, nodata=NODATA, compress="deflate", predictor=2,
            transform=transform_fn(i) if transform_fn else default,
        )
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.moveaxis(chip.astype(np.uint16, copy=False), -1, 0))
            for b, band in enumerate(bands, start=1):
                dst.set_band_description(b, band)
    doc = {"classes": list(class_names), "counts": counts, "n": int(len(y)),
           "bands": list(bands), "size": int(x.shape[1]), "seed": seed, **(metadata or {})}
    (out_dir / "chips.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
    return out_dir


def write_chip_set(
    out_dir: str | os.PathLike,
    *,
    n: int,
    seed: int,
    kind: str = "discovery",
    scene_size: int = 1536,
    n_scenes: int = 3,
    bands: Sequence[str] = DEFAULT_BANDS,
    overwrite: bool = False,
) -> dict[str, int]:
    """Synthesise scenes in a temporary directory and write `n` chips in the authors' layout.

    The chips are written to a hidden sibling of `out_dir` and renamed into place, so a
    reader never sees half a set. Returns the count per class.
    """
    import shutil
    import tempfile

    if kind not in ("discovery", "impact"):
        raise InputError(f"chip kind {kind!r} is not 'discovery' or 'impact'")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(f"{out} exists and is not empty; it won't be overwritten without --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tempfile.TemporaryDirectory(prefix="minescan-synth-") as tmp:
            truths = make_training_scenes(tmp, n_scenes, scene_size, seed, bands)
            if kind == "discovery":
                x, y, info = sample_discovery_chips(truths, n, seed)
                names: tuple[str, ...] = ("not_mine", "mine")
            else:
                x, y, info = sample_impact_patches(truths, n, seed)
                names = IMPACT_LABELS
            write_chip_folders(
                staging, x, y, names, lambda i: info[i].transform, bands=bands, seed=seed,
                metadata={"kind": kind, "scene_size": scene_size, "n_scenes": n_scenes,
                          "source": "minescan synthetic scenes (not real imagery)"},
            )
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: int((y == k).sum()) for k, name in enumerate(names)}
