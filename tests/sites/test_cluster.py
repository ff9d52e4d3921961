"""Linking on the ellipsoid, each national cell once, scoring against planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from minescan.bands import PIXEL_DEG as DEG  # 10 m at the equator, in degrees
from minescan.outputs import coerce_detections
from minescan.sites.cluster import cluster_labels, dedupe_cells, score_against_truth
from pyproj import Geod
from shapely.geometry import box

WGS84 = Geod(ellps="WGS84")


def _dets(rows):
    base = dict(scene_id="a", cell_row=0, cell_col=0, pixel_row=100, pixel_col=100, lon=0.0, lat=0.0,
                p_mine=0.9, impact_class="high", p_high=0.8, p_low=0.1, p_no_ore=0.1, kept=True,
                model_version="m", global_row=None, global_col=None)
    return coerce_detections(pd.DataFrame([{**base, **r} for r in rows]))


@pytest.mark.parametrize("lat", [4.5, -5.0, -20.0, -30.0, -33.5])
def test_pairs_are_linked_by_their_distance_on_the_ellipsoid_at_any_latitude(lat):
    # a national run spans 5° N to 33° S: 750 m east-west links, 850 m does not, everywhere
    lon_near, _, _ = WGS84.fwd(-50.0, lat, 90.0, 750.0)
    lon_far, _, _ = WGS84.fwd(-50.0, lat, 90.0, 850.0)
    labels = cluster_labels(np.array([-50.0, lon_near]), np.array([lat, lat]), link_m=800)
    assert labels[0] == labels[1]
    labels = cluster_labels(np.array([-50.0, lon_far]), np.array([lat, lat]), link_m=800)
    assert labels[0] != labels[1]


def test_the_750_m_pair_at_30_s_is_linked_in_a_national_set_spanning_5_n_to_33_s():
    # the old reduce measured on one plane at the national mean latitude: 846 m, unlinked
    lon_b, _, _ = WGS84.fwd(-51.0, -30.0, 90.0, 750.0)
    lon = np.array([-51.0, lon_b, -60.0, -40.0])
    lat = np.array([-30.0, -30.0, 5.0, -33.0])
    labels = cluster_labels(lon, lat, link_m=800)
    assert labels[0] == labels[1] and len(set(labels)) == 3


def test_points_within_link_distance_chain_into_one_site_and_far_ones_do_not():
    step = 27 * DEG  # one cell, 270 m at the equator
    lon = np.array([0, step, 2 * step, 3 * step, 30 * step])
    labels = cluster_labels(lon, np.zeros(5), link_m=300)
    assert len(set(labels[:4])) == 1 and labels[4] != labels[0]


def test_overlapping_scenes_keep_each_national_cell_once_from_the_more_interior_scene():
    dets = _dets([
        dict(scene_id="a", cell_row=5, cell_col=99, global_row=5, global_col=99, p_mine=0.7),
        dict(scene_id="b", cell_row=5, cell_col=1, global_row=5, global_col=99, p_mine=0.8),
        dict(scene_id="b", cell_row=6, cell_col=50, global_row=6, global_col=148),
    ])
    out = dedupe_cells(dets, {"a": (100, 100), "b": (100, 100)})
    assert len(out) == 2
    kept = out[(out["global_row"] == 5) & (out["global_col"] == 99)]
    assert list(kept["scene_id"]) == ["b"]  # cell 1 of b is farther from b's edge than cell 99 of a


def test_dedupe_breaks_equal_margins_by_scene_id_and_keeps_ungridded_cells():
    dets = _dets([
        dict(scene_id="b", cell_row=50, cell_col=50, global_row=9, global_col=9),
        dict(scene_id="a", cell_row=50, cell_col=50, global_row=9, global_col=9),
        dict(scene_id="c", cell_row=3, cell_col=3),
    ])
    out = dedupe_cells(dets, {"a": (100, 100), "b": (100, 100)})
    assert list(out["scene_id"]) == ["a", "c"]


class _Obj:
    def __init__(self, id, kind, is_target, poly):
        self.id, self.kind, self.is_target, self.polygon_lonlat = id, kind, is_target, poly


def test_score_counts_found_targets_true_sites_and_names_false_ones():
    mine = _Obj("m1", "open_pit_iron", True, box(0, 0, 100 * DEG, 100 * DEG))
    missed = _Obj("m2", "quarry", True, box(1, 1, 1 + 50 * DEG, 1 + 50 * DEG))
    dam = _Obj("d1", "water_dam", False, box(0.5, 0.5, 0.5 + 50 * DEG, 0.5 + 50 * DEG))
    dets = _dets([dict(lon=50 * DEG, lat=50 * DEG), dict(lon=0.5 + 10 * DEG, lat=0.5 + 10 * DEG),
                  dict(lon=-0.5, lat=-0.5), dict(lon=1 + 10 * DEG, lat=1 + 10 * DEG, kept=False)])
    dets["site_id"] = pd.array(["S1", "S2", "S3", None], dtype="string")  # the flagged cell has no site
    score = score_against_truth(dets, [mine, missed, dam], match_m=300)
    assert (score.n_targets, score.n_targets_found, score.n_sites, score.n_sites_true) == (2, 1, 3, 1)
    assert score.recall == 0.5 and score.precision == pytest.approx(1 / 3)
    assert score.false_sites_by_kind == {"water_dam": 1, "background": 1}
    assert score.missed == ("m2",) and score.targets_of_site == {"S1": ("m1",)}


def test_score_measures_distance_to_a_target_on_the_ellipsoid():
    # a target 290 m east of a detection at 30° S is within 300 m; one 310 m away is not
    near_lon, _, _ = WGS84.fwd(-50.0, -30.0, 90.0, 290.0)
    far_lon, _, _ = WGS84.fwd(-50.0, -30.0, 90.0, 310.0)
    near = _Obj("near", "quarry", True, box(near_lon, -30.001, near_lon + 0.01, -29.999))
    far = _Obj("far", "quarry", True, box(far_lon, -30.001, far_lon + 0.01, -29.999))
    dets = _dets([dict(lon=-50.0, lat=-30.0)])
    dets["site_id"] = pd.array(["S1"], dtype="string")
    assert score_against_truth(dets, [near], 300).n_targets_found == 1
    assert score_against_truth(dets, [far], 300).n_targets_found == 0
