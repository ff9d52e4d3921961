"""From detections to sites: keep each national cell once, link cells, score against truth.

The paper's analysts saw each mine as "a cloud of nearby marks" (Balaniuk et al. 2020,
§4.3); a site is one such cloud: detections linked when they lie within `link_m` of each
other (single linkage), so a site follows an elongated pit or a chain of ponds without a
fixed radius. Distances are 3-D chords on the ellipsoid (`geodesy`), the same at 5° N and
at 33° S.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import geodesy

#: detections closer than this belong to one site (a little over two cells diagonally)
DEFAULT_LINK_M = 800.0


def dedupe_cells(detections: pd.DataFrame, scene_shapes: Mapping[str, tuple[int, int]]) -> pd.DataFrame:
    """Keep each national cell once where overlapping scenes both detected it.

    The copy kept is the one farthest from its own scene's edge, whose receptive field saw
    the least zero padding. Detections without global indices are all kept.
    """
    if detections.empty or "global_row" not in detections:
        return detections.reset_index(drop=True)
    has_global = (detections["global_row"].notna() & detections["global_col"].notna()).to_numpy()
    if not has_global.any():
        return detections.reset_index(drop=True)
    gridded = detections[has_global]
    scene_rank, names = pd.factorize(gridded["scene_id"], sort=True)
    shape = np.array([scene_shapes.get(name, (np.inf, np.inf)) for name in names], np.float64).reshape(-1, 2)
    r, c = gridded["cell_row"].to_numpy(np.float64), gridded["cell_col"].to_numpy(np.float64)
    margin = np.minimum.reduce([r, c, shape[scene_rank, 0] - 1 - r, shape[scene_rank, 1] - 1 - c])
    order = np.lexsort((scene_rank, -margin))  # widest margin first, then scene id
    keep = ~gridded.iloc[order].duplicated(["global_row", "global_col"]).to_numpy()
    out = pd.concat([gridded.iloc[order[keep]], detections[~has_global]], ignore_index=True)
    return out.sort_values(["scene_id", "cell_row", "cell_col"], kind="stable").reset_index(drop=True)


def cluster_labels(lon: np.ndarray, lat: np.ndarray, link_m: float = DEFAULT_LINK_M) -> np.ndarray:
    """Connected components of points linked within `link_m` metres (single linkage)."""
    n = len(lon)
    if n == 0:
        return np.zeros(0, np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    xyz = geodesy.geocentric(lon, lat)
    pairs = cKDTree(xyz).query_pairs(link_m, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def representative_members(lon: np.ndarray, lat: np.ndarray, weight: np.ndarray,
                           site: np.ndarray, n_sites: int) -> np.ndarray:
    """Per site, the index of its member nearest its weighted centroid (in 3-D).

    The member's cell centre lies inside the site's footprint, which a centroid of an
    L-shaped pit or a ring of ponds need not.
    """
    xyz = geodesy.geocentric(lon, lat)
    w = np.asarray(weight, np.float64) + 1e-12
    sums = np.zeros((n_sites, 3))
    np.add.at(sums, site, xyz * w[:, None])
    total = np.bincount(site, weights=w, minlength=n_sites)
    centroid = sums / total[:, None]
    d2 = ((xyz - centroid[site]) ** 2).sum(axis=1)
    order = np.lexsort((d2, site))
    first = np.r_[True, np.diff(site[order]) != 0]
    best = np.empty(n_sites, np.int64)
    best[site[order[first]]] = order[first]
    return best


@dataclass(frozen=True)
class TruthScore:
    """Sites against planted truth: the demo's report."""

    n_targets: int
    n_targets_found: int
    n_sites: int
    n_sites_true: int
    false_sites_by_kind: dict[str, int]
    missed: tuple[str, ...]
    #: site id → ids of the planted targets it found, nearest first (true sites only)
    targets_of_site: dict[str, tuple[str, ...]]

    @property
    def recall(self) -> float:
        return self.n_targets_found / self.n_targets if self.n_targets else float("nan")

    @property
    def precision(self) -> float:
        return self.n_sites_true / self.n_sites if self.n_sites else float("nan")


def near_objects(lon: np.ndarray, lat: np.ndarray, polygons: list, match_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(n_points, n_polygons) bool: point within `match_m` (geodesic) of the polygon, and the distances."""
    import shapely

    n, m = len(lon), len(polygons)
    near = np.zeros((n, m), bool)
    dist = np.full((n, m), np.inf)
    if n == 0 or m == 0:
        return near, dist
    points = shapely.points(lon, lat)
    dlon, dlat = geodesy.degrees_around(np.asarray(lat), match_m)
    boxes = shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
    tree = shapely.STRtree(np.asarray(polygons, dtype=object))
    pi, oi = tree.query(boxes, predicate="intersects")
    d = geodesy.distance_m(points[pi], np.asarray(polygons, dtype=object)[oi])
    dist[pi, oi] = d
    near[pi, oi] = d <= match_m
    return near, dist


def score_against_truth(
    detections_with_sites: pd.DataFrame, truth: Iterable, match_m: float = 300.0
) -> TruthScore:
    """Recall over planted targets and precision over sites.

    A target is found when a site's detection lies within `match_m` of its polygon; a site
    is true when any of its detections does (a site may cover several targets: a pit and
    its tailings dam). False sites are attributed to the nearest planted look-alike kind within
    `match_m` (water dam, river bank...) or to `background`. Detections outside any site
    (flagged `no_ore`) are not scored.
    """
    objects = list(truth)
    dets = detections_with_sites[detections_with_sites["site_id"].notna()].reset_index(drop=True)
    near, dist = near_objects(dets["lon"].to_numpy(), dets["lat"].to_numpy(),
                              [o.polygon_lonlat for o in objects], match_m)
    is_target = np.array([o.is_target for o in objects], bool).reshape(-1)
    found = near[:, is_target].any(axis=0)
    site_ids = dets["site_id"].to_numpy()
    targets = [o for o in objects if o.is_target]
    lookalikes = [o for o in objects if not o.is_target]
    target_of: dict[str, tuple[str, ...]] = {}
    false_kinds: dict[str, int] = {}
    for site_id in pd.unique(site_ids):
        members = np.flatnonzero(site_ids == site_id)
        d_t = np.where(near[members][:, is_target], dist[members][:, is_target], np.inf).min(axis=0)
        if np.isfinite(d_t).any():
            hit = np.flatnonzero(np.isfinite(d_t))
            target_of[str(site_id)] = tuple(targets[k].id for k in hit[np.argsort(d_t[hit], kind="stable")])
            continue
        d_l = np.where(near[members][:, ~is_target], dist[members][:, ~is_target], np.inf).min(axis=0)
        kind = lookalikes[int(np.argmin(d_l))].kind if np.isfinite(d_l).any() else "background"
        false_kinds[kind] = false_kinds.get(kind, 0) + 1
    n_sites = len(pd.unique(site_ids))
    return TruthScore(
        n_targets=int(is_target.sum()),
        n_targets_found=int(found.sum()),
        n_sites=n_sites,
        n_sites_true=len(target_of),
        false_sites_by_kind=false_kinds,
        missed=tuple(t.id for t, f in zip(targets, found, strict=True) if not f),
        targets_of_site=target_of,
    )
