"""Cross-validation splits: the paper's random stratified k-fold, and a spatially grouped one.

The paper augmented its data with "several coordinates at strategic points of the mining
sites" (Balaniuk et al. 2020, §3.1): overlapping chips of one mine end up on both sides of a random
split, so random k-fold measures memory of the site as much as skill. The grouped split
puts every chip whose centre lies within `distance_m` of another's in the same group
(single linkage, i.e. connected components), and whole groups into folds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Fold:
    """Indices of one fold's training and validation chips."""

    index: int
    train: np.ndarray
    val: np.ndarray


def stratified_kfold(labels: np.ndarray, k: int, seed: int) -> list[Fold]:
    """Random k-fold with each class spread evenly over the folds."""
    labels = np.asarray(labels)
    _check_k(labels, k)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(labels.size, dtype=np.int64)
    offset = 0
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        # Continue the round-robin where the last class stopped so fold sizes stay within 1.
        fold_of[members] = (np.arange(members.size) + offset) % k
        offset = (offset + members.size) % k
    return _folds_from_assignment(fold_of, k)


def spatial_groups(lon: np.ndarray, lat: np.ndarray, distance_m: float) -> np.ndarray:
    """Group id per chip: connected components of 'centres within `distance_m`'."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    lon_r = np.radians(np.asarray(lon, dtype=np.float64))
    lat_r = np.radians(np.asarray(lat, dtype=np.float64))
    xyz = np.column_stack(
        [np.cos(lat_r) * np.cos(lon_r), np.cos(lat_r) * np.sin(lon_r), np.sin(lat_r)]
    )
    # Great-circle distance d ↔ chord 2·sin(d / 2R) on the unit sphere.
    chord = 2.0 * np.sin(distance_m / (2.0 * EARTH_RADIUS_M))
    pairs = cKDTree(xyz).query_pairs(chord, output_type="ndarray")
    n = xyz.shape[0]
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    return group.astype(np.int64)


def grouped_stratified_kfold(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[Fold]:
    """k folds of whole groups, classes kept as even as the groups allow.

    Greedy, largest groups first (ties in random order): each group goes to the fold where
    it leaves the per-class fractions most even, then to the smallest fold.
    """
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    _check_k(labels, k)
    group_ids, group_index = np.unique(groups, return_inverse=True)
    if group_ids.size < k:
        raise InputError(
            f"only {group_ids.size} spatially separate groups of chips for {k} folds; "
            "use fewer folds (--folds) or a shorter --group-distance"
        )
    classes, label_index = np.unique(labels, return_inverse=True)
    per_group = np.zeros((group_ids.size, classes.size), dtype=np.int64)
    np.add.at(per_group, (group_index, label_index), 1)
    class_totals = per_group.sum(axis=0).astype(np.float64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(group_ids.size)
    order = order[np.argsort(-per_group[order].sum(axis=1), kind="stable")]
    fold_counts = np.zeros((k, classes.size), dtype=np.int64)
    fold_of_group = np.empty(group_ids.size, dtype=np.int64)
    for g in order:
        best, best_key = 0, None
        for f in range(k):
            trial = fold_counts.copy()
            trial[f] += per_group[g]
            spread = float(np.mean(np.std(trial / class_totals, axis=0)))
            key = (spread, int(trial[f].sum()))
            if best_key is None or key < best_key:
                best, best_key = f, key
        fold_counts[best] += per_group[g]
        fold_of_group[g] = best
    return _folds_from_assignment(fold_of_group[group_index], k)


def _check_k(labels: np.ndarray, k: int) -> None:
    if k < 2:
        raise InputError(f"cross-validation needs at least 2 folds, got {k}")
    if labels.size < k:
        raise InputError(f"{labels.size} chips cannot be split into {k} folds; use fewer folds")


def _folds_from_assignment(fold_of: np.ndarray, k: int) -> list[Fold]:
    return [
        Fold(index=f, train=np.flatnonzero(fold_of != f), val=np.flatnonzero(fold_of == f))
        for f in range(k)
    ]
