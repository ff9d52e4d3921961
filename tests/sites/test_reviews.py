"""Analyst verdicts: carried to the same sites of a new run, and read as hard negatives."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from minescan.batch.bench_reduce import write_run
from minescan.errors import EXIT_BAD_INPUT
from minescan.models.networks import DISCOVERY_CLASSES
from minescan.outputs import write_national
from minescan.sites.national import SitesOptions, build_national, load_inputs
from minescan.training.data import point_labels, read_points_table

from tests.helpers import grid_detections, run_cli

CELLS = [(0, 0), (0, 1), (30, 30), (60, 0), (60, 1), (61, 1)]


def reviewed_csv(tmp_path, national, verdicts):
    """The run's sites.csv as an analyst returns it: `review`/`review_note` filled in."""
    write_national(tmp_path / "run1", national, title="t", summary={})
    table = pd.read_csv(tmp_path / "run1" / "sites.csv", dtype=str, keep_default_na=False)
    for site_id, (verdict, note) in verdicts.items():
        table.loc[table["site_id"] == site_id, ["review", "review_note"]] = [verdict, note]
    path = tmp_path / "reviewed.csv"
    table.to_csv(path, index=False)
    return path


def test_verdicts_carry_to_the_same_sites_by_id_and_by_place(tmp_path):
    dets, scenes = grid_detections(CELLS, lon=-46.0, lat=-19.0)
    first = build_national(dets, scenes)
    ids = sorted(first.sites["site_id"])
    grown_id = first.sites.loc[first.sites["n_detections"] == 3, "site_id"].iloc[0]
    kept_id, fp_id = (i for i in ids if i != grown_id)
    path = reviewed_csv(tmp_path, first, {kept_id: ("Confirmed", "pit seen 2020"), fp_id: ("false positive", "a dam"),
                                          grown_id: ("unsure", "")})
    # next year the third site grew one cell to the north: a new id, the same place
    again, _ = grid_detections(CELLS + [(59, 0)], lon=-46.0, lat=-19.0)
    second = build_national(again, scenes, load_inputs(SitesOptions(reviews=str(path))))
    sites = second.sites.set_index("site_id")
    assert grown_id not in sites.index
    assert (sites.loc[kept_id, "review"], sites.loc[kept_id, "review_note"]) == ("confirmed", "pit seen 2020")
    assert sites.loc[fp_id, "review"] == "false_positive"
    moved = sites[sites["n_detections"] == 4].iloc[0]
    assert moved["review"] == "unsure" and pd.isna(moved["review_note"])
    assert second.summary["reviews"] | {"path": None} == {
        "path": None, "verdicts": 3, "carried_by_id": 2, "carried_by_place": 1, "found_no_site": []}


def test_a_verdict_whose_site_is_gone_is_counted(tmp_path):
    dets, scenes = grid_detections(CELLS, lon=-46.0, lat=-19.0)
    first = build_national(dets, scenes)
    gone = first.sites.loc[first.sites["n_detections"] == 1, "site_id"].iloc[0]
    path = reviewed_csv(tmp_path, first, {gone: ("false_positive", "")})
    later = build_national(dets[dets["cell_row"] != dets["cell_row"].min() + 30], scenes,
                           load_inputs(SitesOptions(reviews=str(path))))
    assert later.summary["reviews"]["found_no_site"] == [gone]
    assert later.sites["review"].isna().all()


def test_an_unknown_verdict_exits_3_and_writes_nothing(tmp_path, capsys):
    dets, scenes = grid_detections(CELLS, lon=-46.0, lat=-19.0)
    run = tmp_path / "run"
    write_run(str(run), {sid: dets for sid in scenes}, scenes)
    bad = tmp_path / "reviews.csv"
    bad.write_text("site_id,review\nS1-2,maybe not\n", encoding="utf-8")
    assert run_cli(["reduce", "--run", run, "--reviews", bad]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "row 2" in err and "'maybe not'" in err and "confirmed" in err
    assert not (run / "national").exists()


def test_reduce_carries_verdicts_into_every_output(tmp_path):
    dets, scenes = grid_detections(CELLS, lon=-46.0, lat=-19.0)
    run = tmp_path / "run"
    write_run(str(run), {sid: dets for sid in scenes}, scenes)
    site_id = build_national(dets, scenes).sites["site_id"].iloc[0]
    reviews = tmp_path / "reviews.csv"
    reviews.write_text(f"site_id,review,review_note\n{site_id},fp,\"river bank, sand\"\n", encoding="utf-8")
    assert run_cli(["reduce", "--run", run, "--reviews", reviews]) == 0
    geojson = json.loads((run / "national" / "sites.geojson").read_text("utf-8"))
    props = {f["properties"]["site_id"]: f["properties"] for f in geojson["features"]}
    assert props[site_id]["review"] == "false_positive" and props[site_id]["review_note"] == "river bank, sand"
    assert geojson["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_train_reads_false_positives_as_hard_negatives(tmp_path):
    dets, scenes = grid_detections(CELLS, lon=-46.0, lat=-19.0)
    national = build_national(dets, scenes)
    a, b, c = national.sites["site_id"]
    path = reviewed_csv(tmp_path, national, {a: ("confirmed", ""), b: ("false_positive", "water-supply dam")})
    table = read_points_table(path)
    labels, unknown = point_labels(table, kind="discovery", class_names=DISCOVERY_CLASSES, label_column="label",
                                   ore_column="ore", ore_mapping=None, where=str(path))
    by_id = dict(zip(table["site_id"], labels, strict=True))
    assert by_id[a] == DISCOVERY_CLASSES.index("mine") and by_id[b] == DISCOVERY_CLASSES.index("not_mine")
    assert by_id[c] == -1 and unknown == {}
    np.testing.assert_allclose(table["lon"], national.sites["lon"])


@pytest.mark.parametrize("verdict", ["yes", "TP", "Confirmado"])
def test_verdict_spellings(verdict):
    from minescan.sites.reviews import normalise_verdict

    assert normalise_verdict(verdict, "x") == "confirmed"
