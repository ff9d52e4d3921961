"""`minescan diff`: new, grown, shrunk, vanished and unchanged sites between two runs."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
from minescan.batch.bench_reduce import write_run
from minescan.errors import EXIT_BAD_INPUT, EXIT_CONFLICT
from minescan.sites.diff import DiffOptions, diff_sites
from minescan.sites.national import build_national

from tests.helpers import grid_detections, run_cli

STEADY = [(0, 0), (0, 1), (1, 0), (1, 1)]
GROWING = [(20, 20), (20, 21)]
GROWN = GROWING + [(20, 22), (21, 20), (21, 21), (21, 22), (22, 21), (22, 22)]
VANISHING = [(40, 0)]
SHRINKING = [(60, k) for k in range(10)]
SHRUNK = SHRINKING[:3]
NEW = [(80, 80), (80, 81)]


def reduced(tmp_path, name, cells):
    dets, scenes = grid_detections(cells, lon=-55.0, lat=-6.5)
    run = tmp_path / name
    write_run(str(run), {sid: dets for sid in scenes}, scenes)
    assert run_cli(["reduce", "--run", run]) == 0
    return run


def test_diff_finds_new_grown_shrunk_vanished_and_unchanged_sites(tmp_path, capsys):
    before = reduced(tmp_path, "2019", STEADY + GROWING + VANISHING + SHRINKING)
    after = reduced(tmp_path, "2023", STEADY + GROWN + SHRUNK + NEW)
    assert run_cli(["diff", "--before", before, "--after", after, "--out", tmp_path / "changes"]) == 0
    assert "1 new, 1 grown, 1 shrunk, 1 vanished, 1 unchanged" in capsys.readouterr().out
    changes = gpd.read_parquet(tmp_path / "changes" / "changes.parquet").set_index("change")
    cell = changes.loc["unchanged", "area_after_ha"] / 4
    assert changes.loc["grown", "area_change_ha"] == pytest.approx(6 * cell, rel=1e-3)
    assert changes.loc["grown", "gained_ha"] == pytest.approx(6 * cell, rel=1e-3)
    assert changes.loc["shrunk", "area_change_ha"] == pytest.approx(-7 * cell, rel=1e-3)
    assert changes.loc["shrunk", "lost_ha"] == pytest.approx(7 * cell, rel=1e-3)
    assert changes.loc["vanished", "area_after_ha"] == 0 and changes.loc["vanished", "lost_ha"] > 0
    assert changes.loc["new", "before_ids"] in ("", None) and changes.loc["new", "area_before_ha"] == 0
    assert changes.loc["unchanged", "site_id"] == changes.loc["unchanged", "before_ids"]
    summary = json.loads((tmp_path / "changes" / "summary.json").read_text())
    assert summary["changes"] == {"new": 1, "grown": 1, "shrunk": 1, "vanished": 1, "unchanged": 1}
    assert summary["new_unregistered"] == 1
    doc = json.loads((tmp_path / "changes" / "changes.geojson").read_text())
    assert len(doc["features"]) == 5 and "| grown | 1 |" in (tmp_path / "changes" / "summary.md").read_text()


def test_sites_renamed_by_growth_and_merged_are_paired_by_overlap(tmp_path):
    # two sites 3 cells (801 m) apart; then the west one grows north and fills the gap
    before, scenes = grid_detections(STEADY + [(0, 4)], lon=-55.0, lat=-6.5)
    after, _ = grid_detections([(-1, 0), *STEADY, (0, 2), (0, 3), (0, 4)], lon=-55.0, lat=-6.5)
    a, b = build_national(before, scenes).sites, build_national(after, scenes).sites
    assert len(a) == 2 and len(b) == 1 and b["site_id"][0] not in set(a["site_id"])
    changes = diff_sites(a, b, DiffOptions(min_change_ha=1)).changes
    assert len(changes) == 1
    row = changes.iloc[0]
    assert row["change"] == "grown" and row["before_ids"] == ";".join(sorted(a["site_id"]))


def test_diff_reads_only_committed_national_sets_and_never_overwrites(tmp_path, capsys):
    before = reduced(tmp_path, "2019", STEADY)
    assert run_cli(["diff", "--before", before, "--after", tmp_path / "nothing", "--out", tmp_path / "c"]) == EXIT_BAD_INPUT
    assert "run `minescan reduce`" in capsys.readouterr().err and not (tmp_path / "c").exists()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    assert run_cli(["diff", "--before", before, "--after", before, "--out", taken]) == EXIT_CONFLICT
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".taken")]  # no staging left behind


def test_identical_runs_change_nothing(tmp_path):
    dets, scenes = grid_detections(STEADY + GROWN, lon=-55.0, lat=-6.5)
    sites = build_national(dets, scenes).sites
    result = diff_sites(sites, sites)
    assert set(result.changes["change"]) == {"unchanged"} and result.summary["gained_ha"] == 0
    empty = sites.iloc[:0]
    assert set(diff_sites(empty, sites).changes["change"]) == {"new"}
    assert set(diff_sites(sites, empty).changes["change"]) == {"vanished"}
    assert len(diff_sites(empty, empty).changes) == 0
    assert isinstance(diff_sites(sites, sites).changes, pd.DataFrame)


def test_reduce_with_previous_puts_the_changes_in_national_and_the_report(tmp_path, capsys):
    before = reduced(tmp_path, "2019", STEADY + GROWING + VANISHING + SHRINKING)
    dets, scenes = grid_detections(STEADY + GROWN + SHRUNK + NEW, lon=-55.0, lat=-6.5)
    after = tmp_path / "2023"
    write_run(str(after), {sid: dets for sid in scenes}, scenes)
    assert run_cli(["reduce", "--run", after, "--previous", before]) == 0
    national = after / "national"
    changes = gpd.read_parquet(national / "changes" / "changes.parquet")
    assert sorted(changes["change"]) == ["grown", "new", "shrunk", "unchanged", "vanished"]
    layer = gpd.read_file(national / "minescan.gpkg", layer="changes")
    assert sorted(layer["change"]) == sorted(changes["change"]) and layer.crs.to_epsg() == 4326
    summary = json.loads((national / "summary.json").read_text())
    assert summary["changes_since_previous"]["changes"]["vanished"] == 1
    assert summary["changes_since_previous"]["before"] == str(before)
    marker = json.loads((national / "_SUCCESS.json").read_text())
    assert any("changes/changes.parquet" in name for name in json.dumps(marker).split('"'))
    report = (national / "report.html").read_text()
    section = report.split("Changes since the previous run", 1)[1].split("<h2>", 1)[0]
    assert str(before) in section and "No previous run was given" not in section
    # the counts table, then the four changed sites (new first); the unchanged one is not listed
    assert section.count("<tr>") == 1 + 5 + 1 + 4
    assert section.index(">new<") < section.index(">grown<") < section.index(">vanished<")
    assert ">unknown<" in section and ">False<" not in section  # no register was given to this run


def test_reduce_with_a_previous_run_that_has_no_national_sites_fails_before_reading_shards(tmp_path, capsys):
    dets, scenes = grid_detections(STEADY, lon=-55.0, lat=-6.5)
    run = tmp_path / "2023"
    write_run(str(run), {sid: dets for sid in scenes}, scenes)
    assert run_cli(["reduce", "--run", run, "--previous", tmp_path / "nothing"]) == EXIT_BAD_INPUT
    assert "run `minescan reduce`" in capsys.readouterr().err
    assert not (run / "national").exists()
