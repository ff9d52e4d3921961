"""The sites table as the map, the report and the GeoPackage show it.

The sites stage fills the full site contract (footprint polygons, register and protected
land matches, regions, reviews); an older or partial table lacks some of those columns.
Every reader goes through here, so a missing column reads as "not known" in one way
everywhere, and the ranking rule is written once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..bands import PIXEL_DEG
from ..scan import geometry

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

#: half an output cell (27 px of 10 m) in degrees: a detection stands for its whole cell
HALF_CELL_DEG = geometry.STRIDE * PIXEL_DEG / 2
IMPACT_ORDER = ("high", "low", "no_ore")
RANKING_RULE = (
    "Sites are ranked by, in turn: not in any register before registered; inside protected or "
    "indigenous land before outside; impact class high, then low, then no_ore; larger footprint "
    "(hectares) first; higher mean p(mine) first; then site id. A criterion whose data this run "
    "does not have (no register or protected-land layer given) is skipped."
)


def flag(sites: pd.DataFrame, column: str) -> pd.Series:
    """A yes/no column as a nullable boolean; all NA where the table lacks it."""
    import pandas as pd

    if column not in sites:
        return pd.Series(pd.NA, index=sites.index, dtype="boolean")
    return sites[column].astype("boolean")


def area_ha(sites: pd.DataFrame) -> pd.Series:
    """Footprint area in hectares: the table's own, else its km² × 100."""
    if "area_ha" in sites:
        return sites["area_ha"].astype("float64")
    return sites["area_km2"].astype("float64") * 100.0


def footprints(sites: pd.DataFrame) -> gpd.GeoSeries:
    """Each site's footprint (EPSG:4326): the table's `geometry` polygons where it has them,
    else the bounding box of the site's cells (detection points padded by half a cell)."""
    import geopandas as gpd
    import shapely

    own = _own_footprints(sites)
    if own is not None:
        return own
    if {"min_lon", "min_lat", "max_lon", "max_lat"} <= set(sites.columns):
        shapes = shapely.box(
            sites["min_lon"] - HALF_CELL_DEG, sites["min_lat"] - HALF_CELL_DEG,
            sites["max_lon"] + HALF_CELL_DEG, sites["max_lat"] + HALF_CELL_DEG,
        )
    else:
        shapes = shapely.points(sites["lon"], sites["lat"])
    return gpd.GeoSeries(np.asarray(shapes), index=sites.index, crs="EPSG:4326")


def has_footprints(sites: pd.DataFrame) -> bool:
    """Whether the table brings its own footprint polygons (not bounding boxes)."""
    return _own_footprints(sites) is not None


def _own_footprints(sites: pd.DataFrame) -> gpd.GeoSeries | None:
    import geopandas as gpd

    if "geometry" not in sites or not len(sites):
        return None
    series = gpd.GeoSeries(sites["geometry"].to_numpy(), index=sites.index, crs="EPSG:4326")
    return series if series.geom_type.isin(["Polygon", "MultiPolygon"]).all() else None


def known_count(series: pd.Series) -> int | None:
    """How many are True; None when the whole column is unknown (the run had no register or
    no protected-land layer to tell)."""
    return None if series.isna().all() and len(series) else int(series.fillna(False).sum())


def rank_sites(sites: pd.DataFrame, limit: int | None = None) -> pd.DataFrame:
    """A copy of `sites` in RANKING_RULE's order with a 1-based `rank` column first; only the
    first `limit` when given (the copy of the rest is not made)."""
    import pandas as pd

    keys = pd.DataFrame(
        {
            "unregistered": ~flag(sites, "registered").fillna(False),
            "protected": flag(sites, "protected").fillna(False),
            "impact": sites["impact_class"].map({cls: k for k, cls in enumerate(IMPACT_ORDER)}),
            "area": area_ha(sites),
            "p_mean": sites["p_mine_mean"].astype("float64"),
            "site_id": sites["site_id"].astype(str),
        },
        index=sites.index,
    )
    order = keys.sort_values(
        ["unregistered", "protected", "impact", "area", "p_mean", "site_id"],
        ascending=[False, False, True, False, False, True],
        kind="stable",
    ).index
    ranked = sites.loc[order[:limit]].reset_index(drop=True)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    return ranked


def text_list(value: Any) -> str:
    """A list-like cell (regions, protected names) as '; '-joined text."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return "; ".join(str(v) for v in value)
    return str(value)
