"""Planning a synthetic scene: a river, object polygons and the primitives that paint them.

Pure and cheap: nothing here touches pixels, so a plan is the same whatever the block size.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..bands import PIXEL_DEG
from .kinds import (
    _LOOKALIKE_CYCLE,
    _MINE_KINDS,
    KINDS,
    MAX_OBJECT_PX,
    MIN_OBJECT_PX,
    SPECTRA_BANDS,
    TARGET_EDGE_MARGIN,
    TruthObject,
)

if TYPE_CHECKING:
    from affine import Affine
    from shapely.geometry import Polygon

log = logging.getLogger(__name__)


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
    owner: int = -1  # index of the planned object it paints; -1 for the river and background


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
    gap: float = 12.0,
) -> _Plan:
    """Place the river, targets and look-alikes (pixel coordinates), deterministically.

    Objects keep `gap` pixels from each other (a wide gap keeps every object its own site).
    """
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
    placer = _Placer(size, wedge_poly, river_poly, gap=gap)
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
            prims.extend(replace(p, owner=len(objects)) for p in bar_prims)
            objects.append(("river_bank", bar, None))

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
        prims.extend(replace(p, owner=len(objects)) for p in obj_prims)
        objects.append((kind, footprint, str(rng.choice(ores)) if ores else None))

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


def scene_transform(origin_lonlat: tuple[float, float], pixel_deg: float = PIXEL_DEG) -> "Affine":
    """North-up grid of `pixel_deg` pixels (10 m at the equator by default) whose top-left
    corner is `origin_lonlat`."""
    from affine import Affine

    return Affine(pixel_deg, 0.0, origin_lonlat[0], 0.0, -pixel_deg, origin_lonlat[1])


