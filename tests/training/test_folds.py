"""Cross-validation splits: stratified random folds and spatially grouped folds."""

from __future__ import annotations

import numpy as np
import pytest
from minescan.errors import InputError
from minescan.training.folds import (
    grouped_stratified_kfold,
    spatial_groups,
    stratified_kfold,
)

DEG_PER_KM = 1 / 111.195  # one km of latitude, in degrees


def test_stratified_folds_partition_the_chips_and_balance_classes():
    labels = np.array([0] * 50 + [1] * 30)
    folds = stratified_kfold(labels, 10, seed=3)
    vals = np.concatenate([f.val for f in folds])
    assert sorted(vals.tolist()) == list(range(80))
    for f in folds:
        assert np.intersect1d(f.train, f.val).size == 0
        assert f.train.size + f.val.size == 80
        assert (labels[f.val] == 0).sum() == 5 and (labels[f.val] == 1).sum() == 3


def test_stratified_folds_depend_on_the_seed_only():
    labels = np.arange(40) % 2
    a = stratified_kfold(labels, 5, seed=1)
    b = stratified_kfold(labels, 5, seed=1)
    c = stratified_kfold(labels, 5, seed=2)
    assert all(np.array_equal(x.val, y.val) for x, y in zip(a, b))
    assert not all(np.array_equal(x.val, y.val) for x, y in zip(a, c))


def test_spatial_groups_chain_centres_within_the_distance():
    # Three chips 1.5 km apart in a line chain into one group (single linkage); a fourth
    # 5 km away is alone; 2.5 km steps do not link.
    lat = np.array([0, 1.5, 3.0, 8.0, 20.0, 22.5]) * DEG_PER_KM
    lon = np.zeros_like(lat)
    groups = spatial_groups(lon, lat, 2000)
    assert groups[0] == groups[1] == groups[2]
    assert len({groups[2], groups[3], groups[4], groups[5]}) == 4


def test_spatial_groups_use_ground_distance_not_degrees():
    # At 60° S a degree of longitude is half as long: 0.03° apart is ~1.7 km there.
    lon = np.array([0.0, 0.03])
    assert len(set(spatial_groups(lon, np.array([-60.0, -60.0]), 2000))) == 1
    assert len(set(spatial_groups(lon, np.array([0.0, 0.0]), 2000))) == 2


def test_grouped_folds_never_split_a_group_and_keep_classes_spread():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), rng.integers(1, 6, 40))
    labels = (groups % 2).astype(int)
    folds = grouped_stratified_kfold(labels, groups, 5, seed=0)
    seen = np.concatenate([f.val for f in folds])
    assert sorted(seen.tolist()) == list(range(groups.size))
    for f in folds:
        assert not set(groups[f.train]) & set(groups[f.val])
        frac = labels[f.val].mean()
        assert 0.2 < frac < 0.8


def test_grouped_folds_need_at_least_k_groups():
    with pytest.raises(InputError, match="only 3 spatially separate groups"):
        grouped_stratified_kfold(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 2]), 4, seed=0)


def test_too_few_chips_for_k_is_an_input_error():
    with pytest.raises(InputError, match="3 chips cannot be split into 10 folds"):
        stratified_kfold(np.array([0, 1, 1]), 10, seed=0)
