"""Sites on protected and indigenous land, and in regions: names, types, hectares.

The paper found "two hundred large unregistered gold mining areas ... many of them inside
and around protected indigenous land" (Balaniuk et al. 2020, §4.3). For every site and every
area it intersects this computes the hectares of the footprint inside the area, on the
ellipsoid; then per-site columns and per-area totals split by impact class and by
registration status. Regions (states, municipalities, biomes) use the same overlay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import geodesy
from .layers import PolygonLayer

if TYPE_CHECKING:
    import pandas as pd

M2_PER_HA = 10_000.0
#: per-area totals: sites and hectares for every subset
_SPLITS = (("high", "impact_class", "high"), ("low", "impact_class", "low"),
           ("registered", "registered", True), ("unregistered", "registered", False))


def intersections(footprints: np.ndarray, area_ha: np.ndarray, layers: Sequence[PolygonLayer]) -> pd.DataFrame:
    """(site, layer, area, name, type, ha, piece) for every footprint inside or across an area.

    A footprint wholly inside an area counts its whole area (`piece` is None); one crossing
    the boundary counts the ellipsoidal area of the intersection (`piece`). Pairs that only
    touch are dropped. Sorted by site, most hectares first.
    """
    import pandas as pd
    import shapely

    frames = []
    for k, layer in enumerate(layers):
        polygons = layer.frame.geometry.to_numpy()
        if len(polygons) == 0 or len(footprints) == 0:
            continue
        shapely.prepare(polygons)
        area_idx, site_idx = shapely.STRtree(footprints).query(polygons, predicate="intersects")
        inside = shapely.contains_properly(polygons[area_idx], footprints[site_idx])
        ha = np.where(inside, area_ha[site_idx], 0.0)
        pieces = np.full(len(site_idx), None, dtype=object)
        cut = ~inside
        if cut.any():
            pieces[cut] = shapely.intersection(footprints[site_idx[cut]], polygons[area_idx[cut]])
            ha[cut] = geodesy.area_perimeter(pieces[cut])[0] / M2_PER_HA
        frames.append(pd.DataFrame({
            "site": site_idx, "layer": layer.source, "layer_index": k, "area": area_idx,
            "name": layer.frame["name"].to_numpy()[area_idx], "type": layer.frame["type"].to_numpy()[area_idx],
            "ha": ha, "piece": pieces,
        }))
    if not frames:
        return pd.DataFrame({"site": pd.Series([], dtype=np.int64), "layer": [],
                             "layer_index": pd.Series([], dtype=np.int64), "area": pd.Series([], dtype=np.int64),
                             "name": [], "type": [], "ha": pd.Series([], dtype=np.float64), "piece": []})
    pairs = pd.concat(frames, ignore_index=True)
    pairs = pairs[pairs["ha"] > 0]
    return pairs.sort_values(["site", "ha", "layer_index", "area"], ascending=[True, False, True, True],
                             kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class SiteOverlay:
    """Per-site columns from the pairs of `intersections` (aligned with the sites)."""

    names: pd.Series
    types: pd.Series
    ha_each: pd.Series
    ha_total: np.ndarray


def per_site(pairs: pd.DataFrame, area_ha: np.ndarray) -> SiteOverlay:
    """Names, types and hectares per site, most hectares first; total ha counts overlaps once."""
    import pandas as pd
    import shapely

    n = len(area_ha)
    names = pd.Series(pd.array([None] * n, dtype="string"))
    types = names.copy()
    each = names.copy()
    total = np.zeros(n)
    if pairs.empty:
        return SiteOverlay(names, types, each, total)
    site = pairs["site"].to_numpy(np.int64)
    starts = np.flatnonzero(np.r_[True, site[1:] != site[:-1]])
    ends = np.r_[starts[1:], len(site)]
    owners = site[starts]
    name_of, type_of = pairs["name"].to_numpy(object), pairs["type"].to_numpy(object)
    ha, piece = pairs["ha"].to_numpy(np.float64), pairs["piece"].to_numpy(object)
    names.iloc[owners] = [";".join(map(str, name_of[a:b])) for a, b in zip(starts, ends, strict=True)]
    types.iloc[owners] = [";".join(map(str, type_of[a:b])) for a, b in zip(starts, ends, strict=True)]
    each.iloc[owners] = [";".join(f"{x:.4f}" for x in ha[a:b]) for a, b in zip(starts, ends, strict=True)]
    total[owners] = ha[starts]
    # where areas overlap each other (a territory inside a conservation unit) a sum would
    # count the same hectares twice: a footprint wholly inside one of them is all inside,
    # else the union of its pieces inside each is measured
    several = np.flatnonzero(ends - starts > 1)
    whole = [k for k in several if any(p is None for p in piece[starts[k]:ends[k]])]
    total[owners[whole]] = area_ha[owners[whole]]
    cut = np.setdiff1d(several, whole)
    if len(cut):
        unions = [shapely.union_all(piece[starts[k]:ends[k]]) for k in cut]
        total[owners[cut]] = geodesy.area_perimeter(np.asarray(unions, dtype=object))[0] / M2_PER_HA
    return SiteOverlay(names, types, each, total)


def area_totals(pairs: pd.DataFrame, sites: pd.DataFrame) -> pd.DataFrame:
    """Per area: sites and hectares, in all and split by impact class and registration."""
    import pandas as pd

    columns = ["layer", "name", "type", "sites", "ha"] + [f"{p}_{s}" for s, _, _ in _SPLITS for p in ("sites", "ha")]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    joined = pairs.assign(
        impact_class=sites["impact_class"].to_numpy()[pairs["site"]],
        registered=sites["registered"].to_numpy(bool)[pairs["site"]],
    )
    keys = ["layer_index", "layer", "area", "name", "type"]
    out = joined.groupby(keys, sort=False).agg(sites=("site", "nunique"), ha=("ha", "sum"))
    for suffix, column, value in _SPLITS:
        part = joined[joined[column] == value].groupby(keys, sort=False)
        out[f"sites_{suffix}"] = part["site"].nunique()
        out[f"ha_{suffix}"] = part["ha"].sum()
    out = out.fillna(0).reset_index().drop(columns=["layer_index", "area"])
    for name in out.columns:
        if name.startswith("sites"):
            out[name] = out[name].astype(np.int64)
        elif name.startswith("ha"):
            out[name] = out[name].round(2)
    return out.sort_values(["ha", "name"], ascending=[False, True], kind="stable").reset_index(drop=True)[columns]
