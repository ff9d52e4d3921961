"""Two synthetic years of one area: `diff` finds the planted new, grown and vanished mines."""

from __future__ import annotations

import pytest
import shapely
from minescan.sites.diff import diff_sites
from minescan.sites.footprints import SceneGrid
from minescan.sites.national import build_national
from minescan.synth.years import GROWTH, synthesize_years


@pytest.fixture(scope="module")
def years(tmp_path_factory):
    out = tmp_path_factory.mktemp("years")
    return synthesize_years(out / "2019.tif", out / "2023.tif", size=1400, seed=11)


def test_the_second_year_differs_from_the_first_only_where_the_plan_says(years):
    before = {o.id: o for o in years.before.objects}
    after = {o.id: o for o in years.after.objects}
    changes = years.changes
    assert sorted(changes.values()).count("new") == 2 and list(changes.values()).count("vanished") == 2
    for object_id, change in changes.items():
        assert (object_id in before) == (change != "new")
        assert (object_id in after) == (change != "vanished")
        if change == "grown":
            ratio = before[object_id].polygon_pixels.area / after[object_id].polygon_pixels.area
            assert ratio == pytest.approx(GROWTH**2, rel=1e-6)
        elif change == "unchanged":
            assert before[object_id].polygon_lonlat.equals(after[object_id].polygon_lonlat)
    lookalikes = {o.id for o in years.before.lookalikes}
    assert lookalikes == {o.id for o in years.after.lookalikes}  # the look-alikes stay put


def test_diff_of_the_two_scanned_years_finds_the_planted_changes(years):
    from minescan.models.bundled import load_models
    from minescan.scan.config import ScanConfig
    from minescan.scan.scanner import scan_scene

    models = load_models(None, None)
    national = []
    for truth in (years.before, years.after):
        result = scan_scene(truth.path, *models, ScanConfig())
        grid = SceneGrid(result.p_mine.shape, result.scene.crs_wkt, tuple(result.scene.transform)[:6])
        national.append(build_national(result.detections, {result.scene.scene_id: grid}))
    changes = diff_sites(national[0].sites, national[1].sites).changes
    geoms = changes.geometry.to_numpy()
    objects = {o.id: o for o in years.before.objects + years.after.objects}
    for object_id, change in years.changes.items():
        found = changes.loc[shapely.intersects(geoms, objects[object_id].polygon_lonlat), "change"]
        if change != "unchanged":
            assert list(found) == [change], (object_id, change, list(found))
        else:  # a target present both years is never reported as appearing or disappearing
            assert not {"new", "vanished"} & set(found), (object_id, list(found))
