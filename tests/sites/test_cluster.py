"""Sites: each national cell once, single-linkage clusters, scoring against planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from minescan.bands import PIXEL_DEG as DEG  # 10 m at the equator, in degrees
from minescan.outputs import coerce_detections
from minescan.sites.cluster import (
    CELL_AREA_KM2,
    build_sites,
    cluster_labels,
    dedupe_cells,
    score_against_truth,
)
from shapely.geometry import box


def _dets(rows):
    base = dict(scene_id="a", cell_row=0, cell_col=0, pixel_row=100, pixel_col=100, lon=0.0, lat=0.0,
                p_mine=0.9, impact_class="high", p_high=0.8, p_low=0.1, p_no_ore=0.1, kept=True,
                model_version="m", global_row=None, global_col=None)
    return coerce_detections(pd.DataFrame([{**base, **r} for r in rows]))


def test_points_within_link_distance_chain_into_one_site_and_far_ones_do_not():
    step = 27 * DEG  # one cell, 270 m
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


def test_sites_are_numbered_by_peak_probability_and_carry_their_detections():
    step = 27 * DEG
    dets = _dets([
        dict(lon=0.0, lat=0.0, p_mine=0.7), dict(lon=step, lat=0.0, p_mine=0.65, cell_col=1),
        dict(lon=1.0, lat=0.0, p_mine=0.95, impact_class="low", p_high=0.1, p_low=0.8, p_no_ore=0.1),
    ])
    sites, with_ids = build_sites(dets, link_m=400)
    assert list(sites["site_id"]) == ["S00001", "S00002"]
    assert sites.loc[0, "n_detections"] == 1 and sites.loc[0, "impact_class"] == "low"
    assert sites.loc[1, "n_detections"] == 2 and sites.loc[1, "area_km2"] == pytest.approx(2 * CELL_AREA_KM2)
    w = np.array([0.7, 0.65])
    assert sites.loc[1, "lon"] == pytest.approx((w * [0.0, step]).sum() / w.sum())
    assert list(with_ids["site_id"]) == ["S00002", "S00002", "S00001"]


def test_empty_detections_give_no_sites():
    from minescan.outputs import empty_detections

    sites, dets = build_sites(empty_detections())
    assert len(sites) == 0 and "site_id" in dets


class _Obj:
    def __init__(self, id, kind, is_target, poly):
        self.id, self.kind, self.is_target, self.polygon_lonlat = id, kind, is_target, poly


def test_score_counts_found_targets_true_sites_and_names_false_ones():
    mine = _Obj("m1", "open_pit_iron", True, box(0, 0, 100 * DEG, 100 * DEG))
    missed = _Obj("m2", "quarry", True, box(1, 1, 1 + 50 * DEG, 1 + 50 * DEG))
    dam = _Obj("d1", "water_dam", False, box(0.5, 0.5, 0.5 + 50 * DEG, 0.5 + 50 * DEG))
    dets = _dets([dict(lon=50 * DEG, lat=50 * DEG), dict(lon=0.5 + 10 * DEG, lat=0.5 + 10 * DEG),
                  dict(lon=-0.5, lat=-0.5)])
    _, with_ids = build_sites(dets)
    score = score_against_truth(with_ids, [mine, missed, dam], match_m=300)
    assert (score.n_targets, score.n_targets_found, score.n_sites, score.n_sites_true) == (2, 1, 3, 1)
    assert score.recall == 0.5 and score.precision == pytest.approx(1 / 3)
    assert score.false_sites_by_kind == {"water_dam": 1, "background": 1}
    assert score.missed == ("m2",)
