"""The same synthetic area in two years: mines opened, grown and abandoned in between.

One plan holds every object of both years (a few mines more than a single scene would
have); then, with the same landscape, river, noise and look-alikes:

* **new** mines are absent in the first year (forest or pasture there);
* **grown** mines (the largest) are painted in the first year at `GROWTH` of their size
  (about their centroid), full size in the second;
* **vanished** mines (abandoned and revegetated) are painted only in the first year;
* every other object is the same in both years.

Objects are planted `GAP_PX` apart, so that each change is one site of its own in the
reduce and `minescan diff` can be scored against the plan.

The truth of each year lists the objects present that year (grown ones with their smaller
first-year polygon) under the same ids, and `changes` says what happened to each target.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from ..bands import DEFAULT_BANDS, check_bands
from .kinds import CRS, KINDS, SceneTruth, TruthObject
from .plan import (
    _Plan,
    _plan_scene,
    _rng,
    _to_lonlat,
    _truth_objects,
    default_counts,
    scene_transform,
)
from .render import render_plan

#: linear size of a grown mine in the first year, as a fraction of its second-year size
GROWTH = 0.55
#: objects keep this far apart (px): farther than the reduce links detections (800 m) plus
#: the reach of a 2 km discovery chip, so each planted change is a site of its own
GAP_PX = 160
Change = Literal["new", "grown", "vanished", "unchanged"]


@dataclass(frozen=True)
class YearsTruth:
    before: SceneTruth
    after: SceneTruth
    #: planted target id → what happened to it between the two years
    changes: dict[str, Change]


def _scaled(poly, factor: float, origin):
    from shapely import affinity

    return affinity.scale(poly, factor, factor, origin=origin)


def _year_plan(plan: _Plan, absent: set[int], shrunk: set[int]) -> _Plan:
    """The plan without the `absent` objects' paint, the `shrunk` ones at GROWTH of their size."""
    centre = {k: plan.objects[k][1].centroid for k in shrunk}
    prims = tuple(
        replace(p, polygon=_scaled(p.polygon, GROWTH, centre[p.owner])) if p.owner in shrunk else p
        for p in plan.primitives
        if p.owner not in absent
    )
    return replace(plan, primitives=prims)


def _year_truth(objects: tuple[TruthObject, ...], absent: set[int], shrunk: set[int], transform) -> tuple:
    out = []
    for k, obj in enumerate(objects):
        if k in absent:
            continue
        if k in shrunk:
            px = _scaled(obj.polygon_pixels, GROWTH, obj.polygon_pixels.centroid)
            obj = replace(obj, polygon_pixels=px, polygon_lonlat=_to_lonlat(px, transform))
        out.append(obj)
    return tuple(out)


def synthesize_years(
    before_path: str | os.PathLike,
    after_path: str | os.PathLike,
    *,
    size: int,
    seed: int,
    n_new: int = 2,
    n_grown: int = 2,
    n_vanished: int = 2,
    bands: Sequence[str] = DEFAULT_BANDS,
    origin_lonlat: tuple[float, float] = (-55.9, -6.3),  # Tapajós gold fields, Pará
) -> YearsTruth:
    """Write the first- and second-year scenes of one area; return both truths and the changes."""
    from ..errors import InputError

    try:
        bands = check_bands(list(bands))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    mines, dams, lookalikes = default_counts(size)
    plan = _plan_scene(size, seed, n_mines=mines + n_new, n_dams=dams, n_lookalikes=lookalikes, gap=GAP_PX)
    targets = [k for k, (kind, _, _) in enumerate(plan.objects) if KINDS[kind].is_target]
    if len(targets) < n_new + n_grown + n_vanished + 1:
        raise InputError(f"a {size}-px scene holds {len(targets)} targets: too few for "
                         f"{n_new} new, {n_grown} grown and {n_vanished} vanished; use a larger size")
    # changes go to the largest targets, grown ones first (a grown mine's first-year self,
    # at GROWTH of its size, must still be a mine the scan can see)
    by_size = sorted(targets, key=lambda k: -plan.objects[k][1].area)
    grown = set(by_size[:n_grown])
    pool = by_size[n_grown:n_grown + n_new + n_vanished]
    rest = [pool[k] for k in _rng(seed, 3).permutation(len(pool))]
    new, vanished = set(rest[:n_new]), set(rest[n_new:n_new + n_vanished])
    transform = scene_transform(origin_lonlat)
    objects = _truth_objects(plan, transform)
    truths = []
    for path, absent, shrunk in ((before_path, new, grown), (after_path, vanished, set())):
        render_plan(path, _year_plan(plan, absent, shrunk), seed, bands, transform)
        truths.append(SceneTruth(str(path), size, transform, CRS, bands,
                                 _year_truth(objects, absent, shrunk, transform)))
    changes: dict[str, Change] = {}
    for k in targets:
        changes[objects[k].id] = ("new" if k in new else "grown" if k in grown
                                  else "vanished" if k in vanished else "unchanged")
    return YearsTruth(truths[0], truths[1], changes)

