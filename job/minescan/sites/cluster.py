"""From detections to sites: keep each national cell once, cluster, score against truth.

The paper's analysts saw each mine as "a cloud of nearby marks" (Balaniuk et al. 2020, §4.3); a site is
one such cloud: detections linked when they lie within `link_m` of each other (single
linkage), so a site follows an elongated pit or a chain of ponds without a fixed radius.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..ores import IMPACT_CLASSES
from ..scan import geometry

#: metres per degree of latitude, and of longitude at the equator (WGS84, good to 0.5 %)
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON = 111_320.0
#: a cell is 27 × 27 px of 10 m
CELL_AREA_KM2 = (geometry.STRIDE * 10 / 1000) ** 2
#: detections closer than this belong to one site (a little over two cells diagonally)
DEFAULT_LINK_M = 800.0


def local_metres(lon: np.ndarray, lat: np.ndarray, lat0: float) -> np.ndarray:
    """(n, 2) x/y in metres on an equirectangular plane around latitude `lat0`."""
    x = np.asarray(lon, np.float64) * _M_PER_DEG_LON * np.cos(np.radians(lat0))
    y = np.asarray(lat, np.float64) * _M_PER_DEG_LAT
    return np.column_stack([x, y])


def dedupe_cells(detections: pd.DataFrame, scene_shapes: Mapping[str, tuple[int, int]]) -> pd.DataFrame:
    """Keep each national cell once where overlapping scenes both detected it.

    The copy kept is the one farthest from its own scene's edge, whose receptive field saw
    the least zero padding. Detections without global indices are all kept.
    """
    if detections.empty or "global_row" not in detections:
        return detections.reset_index(drop=True)
    has_global = detections["global_row"].notna() & detections["global_col"].notna()
    gridded = detections[has_global].copy()
    if gridded.empty:
        return detections.reset_index(drop=True)
    rows = np.array([scene_shapes.get(s, (np.inf, np.inf))[0] for s in gridded["scene_id"]])
    cols = np.array([scene_shapes.get(s, (np.inf, np.inf))[1] for s in gridded["scene_id"]])
    r, c = gridded["cell_row"].to_numpy(), gridded["cell_col"].to_numpy()
    gridded["_margin"] = np.minimum.reduce([r, c, rows - 1 - r, cols - 1 - c])
    gridded = gridded.sort_values(["_margin", "scene_id"], ascending=[False, True], kind="stable")
    gridded = gridded.drop_duplicates(["global_row", "global_col"]).drop(columns="_margin")
    out = pd.concat([gridded, detections[~has_global]], ignore_index=True)
    return out.sort_values(["scene_id", "cell_row", "cell_col"], kind="stable").reset_index(drop=True)


def cluster_labels(lon: np.ndarray, lat: np.ndarray, link_m: float = DEFAULT_LINK_M) -> np.ndarray:
    """Connected components of points linked within `link_m` metres (single linkage)."""
    n = len(lon)
    if n == 0:
        return np.zeros(0, np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    xy = local_metres(lon, lat, float(np.mean(lat)))
    pairs = cKDTree(xy).query_pairs(link_m, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def build_sites(detections: pd.DataFrame, link_m: float = DEFAULT_LINK_M) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cluster detections into sites; return (sites, detections with a `site_id` column).

    Site ids are stable for the same detections: sites are numbered by descending peak
    p(mine), ties broken by position.
    """
    from ..outputs import SITE_COLUMNS, empty_sites

    dets = detections.reset_index(drop=True).copy()
    if dets.empty:
        dets["site_id"] = pd.Series(dtype=object)
        return empty_sites(), dets
    labels = cluster_labels(dets["lon"].to_numpy(), dets["lat"].to_numpy(), link_m)
    dets["_cluster"] = labels
    w = dets["p_mine"].astype(np.float64)
    grouped = dets.assign(_wlon=dets["lon"] * w, _wlat=dets["lat"] * w, _w=w).groupby("_cluster")
    agg = grouped.agg(
        _wlon=("_wlon", "sum"), _wlat=("_wlat", "sum"), _w=("_w", "sum"),
        n_detections=("p_mine", "size"), p_mine_max=("p_mine", "max"), p_mine_mean=("p_mine", "mean"),
        p_high=("p_high", "mean"), p_low=("p_low", "mean"), p_no_ore=("p_no_ore", "mean"),
        min_lon=("lon", "min"), min_lat=("lat", "min"), max_lon=("lon", "max"), max_lat=("lat", "max"),
        scenes=("scene_id", lambda s: ";".join(sorted(set(s)))),
    )
    agg["lon"] = agg.pop("_wlon") / agg["_w"]
    agg["lat"] = agg.pop("_wlat") / agg.pop("_w")
    means = agg[["p_high", "p_low", "p_no_ore"]].to_numpy()
    agg["impact_class"] = np.asarray(IMPACT_CLASSES, dtype=object)[np.argmax(means, axis=1)]
    agg["area_km2"] = (agg["n_detections"] * CELL_AREA_KM2).round(4)
    agg = agg.sort_values(["p_mine_max", "lat", "lon"], ascending=[False, False, True], kind="stable")
    agg["site_id"] = [f"S{k + 1:05d}" for k in range(len(agg))]
    site_of_cluster = dict(zip(agg.index, agg["site_id"]))
    dets["site_id"] = dets.pop("_cluster").map(site_of_cluster)
    sites = agg.reset_index(drop=True)
    for col in ("p_mine_max", "p_mine_mean", "p_high", "p_low", "p_no_ore"):
        sites[col] = sites[col].astype(np.float32)
    sites["n_detections"] = sites["n_detections"].astype(np.int64)
    return sites[list(SITE_COLUMNS)], dets


@dataclass(frozen=True)
class TruthScore:
    """Sites against planted truth: the demo's report."""

    n_targets: int
    n_targets_found: int
    n_sites: int
    n_sites_true: int
    false_sites_by_kind: dict[str, int]
    missed: tuple[str, ...]

    @property
    def recall(self) -> float:
        return self.n_targets_found / self.n_targets if self.n_targets else float("nan")

    @property
    def precision(self) -> float:
        return self.n_sites_true / self.n_sites if self.n_sites else float("nan")


def score_against_truth(
    detections_with_sites: pd.DataFrame, truth: Iterable, match_m: float = 300.0
) -> TruthScore:
    """Recall over planted targets and precision over sites.

    A target is found when a kept detection lies within `match_m` of its polygon; a site is
    true when any of its detections does. False sites are attributed to the nearest planted
    look-alike kind within `match_m` (water dam, river bank...) or to `background`.
    """
    from shapely import Point, distance
    from shapely import transform as shp_transform

    objects = list(truth)
    dets = detections_with_sites
    lat0 = float(np.mean([o.polygon_lonlat.centroid.y for o in objects])) if objects else 0.0
    kx = _M_PER_DEG_LON * np.cos(np.radians(lat0))

    def to_m(geom):
        return shp_transform(geom, lambda xy: xy * np.array([kx, _M_PER_DEG_LAT]))

    polys = [to_m(o.polygon_lonlat) for o in objects]
    points = [Point(x, y) for x, y in local_metres(dets["lon"].to_numpy(), dets["lat"].to_numpy(), lat0)] if len(dets) else []
    near = np.zeros((len(points), len(objects)), bool)
    if points and objects:
        d = distance(np.asarray(points, dtype=object)[:, None], np.asarray(polys, dtype=object)[None, :])
        near = d <= match_m
    is_target = np.array([o.is_target for o in objects], bool)
    found = near[:, is_target].any(axis=0) if len(points) else np.zeros(is_target.sum(), bool)
    target_ids = [o.id for o in objects if o.is_target]
    det_true = near[:, is_target].any(axis=1) if len(points) else np.zeros(0, bool)
    site_true = pd.Series(det_true, index=dets.index).groupby(dets["site_id"]).any() if len(points) else pd.Series(dtype=bool)
    false_kinds: dict[str, int] = {}
    for site_id, ok in site_true.items():
        if ok:
            continue
        members = np.flatnonzero((dets["site_id"] == site_id).to_numpy())
        hit = near[members][:, ~is_target].any(axis=0)
        kinds = [o.kind for o, h in zip([o for o in objects if not o.is_target], hit) if h]
        kind = kinds[0] if kinds else "background"
        false_kinds[kind] = false_kinds.get(kind, 0) + 1
    return TruthScore(
        n_targets=int(is_target.sum()),
        n_targets_found=int(found.sum()),
        n_sites=int(len(site_true)),
        n_sites_true=int(site_true.sum()),
        false_sites_by_kind=false_kinds,
        missed=tuple(t for t, f in zip(target_ids, found) if not f),
    )
