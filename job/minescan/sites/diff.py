"""What changed between two runs: new, grown, shrunk, vanished and unchanged sites.

Sites of the two runs are paired by stable id and by footprint overlap (an overlap of
positive area on the ellipsoid); the pairs form groups (connected components), so a site
that grew to the north and changed its id, two sites that merged, or one that split are
each one group. Per group:

* no site before: every after-site is **new**; no site after: every before-site **vanished**;
* otherwise the group's area change Δ = area after − area before decides: **grown** when
  Δ ≥ max(`min_change_ha`, `min_change_frac` × area before), **shrunk** when −Δ reaches the
  same bar, else **unchanged**. Every after-site of the group takes that status, and lists
  the before-ids it came from (more than one: a merge; an id shared with other
  after-sites: a split).

`gained_ha` and `lost_ha` are the ellipsoidal areas of the after-footprint outside the
before-footprints and of the before-footprints outside it: where the ground changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from . import geodesy
from .overlay import M2_PER_HA

if TYPE_CHECKING:
    import geopandas as gpd

CHANGES = ("new", "grown", "shrunk", "vanished", "unchanged")
#: columns of the change table, before its geometry
CHANGE_COLUMNS = ("change", "site_id", "before_ids", "after_ids", "area_before_ha", "area_after_ha",
                  "area_change_ha", "area_change_pct", "gained_ha", "lost_ha", "impact_class",
                  "registered", "protected", "protected_names", "lon", "lat")


class DiffOptions(BaseModel):
    """When a site counts as grown or shrunk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_change_ha: float = Field(10.0, ge=0, description="smallest area change that counts (ha); a cell is 6-7 ha")
    min_change_frac: float = Field(0.25, ge=0, description="smallest area change that counts, as a fraction of the area before")


@dataclass(frozen=True)
class SiteChanges:
    #: one row per after-site plus one per vanished before-site; geometry: the footprint
    #: after (before, for a vanished site)
    changes: gpd.GeoDataFrame
    summary: dict[str, Any]


def _groups(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame) -> np.ndarray:
    """Group label of every before-site then every after-site (pairs: same id or overlap)."""
    import shapely
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nb, na = len(before), len(after)
    a_geoms = after.geometry.to_numpy()
    b_geoms = before.geometry.to_numpy()
    bi, ai = shapely.STRtree(a_geoms).query(b_geoms, predicate="intersects")
    if len(bi):
        overlap = geodesy.area_perimeter(shapely.intersection(b_geoms[bi], a_geoms[ai]))[0]
        bi, ai = bi[overlap > 0], ai[overlap > 0]
    position = {sid: k for k, sid in enumerate(after["site_id"])}
    same = [(k, position[sid]) for k, sid in enumerate(before["site_id"]) if sid in position]
    rows = np.concatenate([bi, [b for b, _ in same]]).astype(np.int64)
    cols = np.concatenate([ai, [a for _, a in same]]).astype(np.int64) + nb
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(nb + na, nb + na))
    return connected_components(graph, directed=False)[1]


def diff_sites(before: gpd.GeoDataFrame, after: gpd.GeoDataFrame, options: DiffOptions | None = None) -> SiteChanges:
    """Compare two national site tables (footprints in EPSG:4326)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    options = options or DiffOptions()
    nb = len(before)
    labels = _groups(before, after)
    b_label, a_label = labels[:nb], labels[nb:]
    b_area = before["area_ha"].to_numpy(np.float64)
    a_area = after["area_ha"].to_numpy(np.float64)
    b_geoms, a_geoms = before.geometry.to_numpy(), after.geometry.to_numpy()
    size = labels.max() + 1 if len(labels) else 0
    area_before = np.bincount(b_label, weights=b_area, minlength=size)
    area_after = np.bincount(a_label, weights=a_area, minlength=size)
    n_before = np.bincount(b_label, minlength=size)
    delta = area_after - area_before
    bar = np.maximum(options.min_change_ha, options.min_change_frac * area_before)
    status = np.where(delta >= bar, "grown", np.where(-delta >= bar, "shrunk", "unchanged"))
    status = np.where(n_before == 0, "new", status)
    ids_of, b_members = _joined_ids(before["site_id"].to_numpy(), b_label, size)
    after_ids, _ = _joined_ids(after["site_id"].to_numpy(), a_label, size)
    union_before = np.full(size, None, dtype=object)
    for g, members in b_members.items():
        union_before[g] = shapely.union_all(b_geoms[members])

    # one row per after-site, then one per vanished before-site, column by column
    old = union_before[a_label]
    paired = ~shapely.is_missing(old)
    gained, lost = a_geoms.copy(), np.full(len(after), shapely.Polygon(), dtype=object)
    gained[paired] = shapely.difference(a_geoms[paired], old[paired])
    lost[paired] = shapely.difference(old[paired], a_geoms[paired])
    gone = np.flatnonzero(np.isin(b_label, a_label, invert=True))
    g_after, g_gone = a_label, b_label[gone]
    site = pd.concat([after.drop(columns=after.geometry.name), before.drop(columns=before.geometry.name).iloc[gone]],
                     ignore_index=True)
    groups = np.concatenate([g_after, g_gone])
    a_before = area_before[groups]
    a_now = np.concatenate([area_after[g_after], np.zeros(len(gone))])
    table = pd.DataFrame({
        "change": np.concatenate([status[g_after], np.full(len(gone), "vanished", dtype=object)]).astype(object),
        "site_id": site["site_id"].to_numpy(),
        "before_ids": [ids_of[g] for g in groups],
        "after_ids": [after_ids[g] for g in g_after] + [""] * len(gone),
        "area_before_ha": [round(v, 4) for v in a_before.tolist()],
        "area_after_ha": [round(v, 4) for v in a_now.tolist()],
        "area_change_ha": [round(n - b, 4) for b, n in zip(a_before.tolist(), a_now.tolist(), strict=True)],
        "area_change_pct": [round((n - b) / b * 100, 2) if b > 0 else float("nan")
                            for b, n in zip(a_before.tolist(), a_now.tolist(), strict=True)],
        "gained_ha": 0.0,
        "lost_ha": 0.0,
        "impact_class": site["impact_class"].to_numpy(),
        "registered": [bool(v) for v in site["registered"]],
        "protected": [bool(v) for v in site["protected"]],
        "protected_names": [None if _missing(v) else v for v in site["protected_names"]],
        "lon": site["lon"].to_numpy(),
        "lat": site["lat"].to_numpy(),
    }, columns=list(CHANGE_COLUMNS))
    geoms = np.concatenate([a_geoms, b_geoms[gone]])
    if len(table):
        measured = geodesy.area_perimeter(np.concatenate([gained, np.full(len(gone), shapely.Polygon()),
                                                          lost, b_geoms[gone]]))[0]
        table["gained_ha"] = np.round(measured[: len(table)] / M2_PER_HA, 4)
        table["lost_ha"] = np.round(measured[len(table):] / M2_PER_HA, 4)
    changes = gpd.GeoDataFrame(table, geometry=geoms, crs="EPSG:4326")
    order = np.lexsort((changes["site_id"].to_numpy(), [CHANGES.index(c) for c in changes["change"]]))
    changes = changes.iloc[order].reset_index(drop=True)
    return SiteChanges(changes, _summary(changes, before, after, options))


def _joined_ids(ids: np.ndarray, labels: np.ndarray, size: int) -> tuple[list[str], dict[int, np.ndarray]]:
    """Per group, its site ids sorted and joined by ';' ("" for a group with none here), and
    the positions of its members: one sort, not a scan per group."""
    joined: list[str] = [""] * size
    members: dict[int, np.ndarray] = {}
    if not len(ids):
        return joined, members
    by_id = np.argsort(ids, kind="stable")
    order = by_id[np.argsort(labels[by_id], kind="stable")]  # by group, then by id
    starts = np.flatnonzero(np.r_[True, labels[order][1:] != labels[order][:-1]])
    for run in np.split(order, starts[1:]):
        g = int(labels[run[0]])
        joined[g] = ";".join(ids[run].tolist())
        members[g] = np.sort(run)  # in table order, as the union reads them
    return joined, members


def _missing(value: object) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def _summary(changes: gpd.GeoDataFrame, before, after, options: DiffOptions) -> dict[str, Any]:
    counts = {c: int((changes["change"] == c).sum()) for c in CHANGES}
    return {
        "sites_before": len(before),
        "sites_after": len(after),
        "changes": counts,
        "area_before_ha": round(float(before["area_ha"].sum()), 2),
        "area_after_ha": round(float(after["area_ha"].sum()), 2),
        "gained_ha": round(float(changes["gained_ha"].sum()), 2),
        "lost_ha": round(float(changes["lost_ha"].sum()), 2),
        "new_unregistered": int(((changes["change"] == "new") & ~changes["registered"]).sum()),
        "new_on_protected_land": int(((changes["change"] == "new") & changes["protected"]).sum()),
        "grown_on_protected_land": int(((changes["change"] == "grown") & changes["protected"]).sum()),
        "options": options.model_dump(),
    }

