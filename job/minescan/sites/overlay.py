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
    """(site, layer, area, name, type, ha) for every site footprint inside or across an area.

    A footprint wholly inside an area counts its whole area; one crossing the boundary
    counts the ellipsoidal area of the intersection. Pairs that only touch are dropped.
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
        cut = ~inside
        if cut.any():
            pieces = shapely.intersection(footprints[site_idx[cut]], polygons[area_idx[cut]])
            ha[cut] = geodesy.area_perimeter(pieces)[0] / M2_PER_HA
        frames.append(pd.DataFrame({
            "site": site_idx, "layer": layer.source, "layer_index": k, "area": area_idx,
            "name": layer.frame["name"].to_numpy()[area_idx], "type": layer.frame["type"].to_numpy()[area_idx],
            "ha": ha,
        }))
    if not frames:
        return pd.DataFrame({"site": pd.Series([], dtype=np.int64), "layer": [],
                             "layer_index": pd.Series([], dtype=np.int64), "area": pd.Series([], dtype=np.int64),
                             "name": [], "type": [], "ha": pd.Series([], dtype=np.float64)})
    pairs = pd.concat(frames, ignore_index=True)
    pairs = pairs[pairs["ha"] > 0]
    return pairs.sort_values(["site", "ha", "layer", "area"], ascending=[True, False, True, True],
                             kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class SiteOverlay:
    """Per-site columns from the pairs of `intersections` (aligned with the sites)."""

    names: pd.Series
    types: pd.Series
    ha_each: pd.Series
    ha_total: np.ndarray


def per_site(pairs: pd.DataFrame, footprints: np.ndarray, layers: Sequence[PolygonLayer]) -> SiteOverlay:
    """Names, types and hectares per site, most hectares first; total ha counts overlaps once."""
    import pandas as pd
    import shapely

    n = len(footprints)
    names = pd.Series(pd.array([None] * n, dtype="string"))
    types = names.copy()
    each = names.copy()
    total = np.zeros(n)
    if pairs.empty:
        return SiteOverlay(names, types, each, total)
    grouped = pairs.groupby("site", sort=True)
    sites = np.asarray(list(grouped.groups))
    names.iloc[sites] = grouped["name"].agg(lambda v: ";".join(map(str, v))).to_numpy()
    types.iloc[sites] = grouped["type"].agg(lambda v: ";".join(map(str, v))).to_numpy()
    each.iloc[sites] = grouped["ha"].agg(lambda v: ";".join(f"{x:.4f}" for x in v)).to_numpy()
    total[sites] = grouped["ha"].sum().to_numpy()
    # where areas overlap each other (a territory inside a conservation unit) the sum
    # would count the same hectares twice: measure the union instead
    several = pairs["site"].value_counts()
    for site in several[several > 1].index:
        rows = pairs[pairs["site"] == site]
        areas = [layers[k].frame.geometry.iloc[a] for k, a in zip(rows["layer_index"], rows["area"], strict=True)]
        inside = shapely.intersection(footprints[site], shapely.union_all(areas))
        total[site] = geodesy.area_perimeter(np.asarray([inside], dtype=object))[0][0] / M2_PER_HA
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
