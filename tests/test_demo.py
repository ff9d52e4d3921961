"""The bundled demo models and `minescan demo`, on synthetic areas they never saw."""

from __future__ import annotations

import json
from pathlib import Path

from minescan.errors import EXIT_BAD_INPUT
from minescan.models.bundled import DEMO_MODELS, load_models
from minescan.models.card import read_model_card
from minescan.scan.config import ScanConfig
from minescan.scan.scanner import scan_scene
from minescan.sites.cluster import score_against_truth
from minescan.sites.footprints import SceneGrid
from minescan.sites.national import build_national

from tests.helpers import run_cli


def test_bundled_demo_models_are_the_papers_networks_and_verify():
    discovery = read_model_card(DEMO_MODELS / "discovery")
    impact = read_model_card(DEMO_MODELS / "impact")
    assert discovery.kind == "discovery" and discovery.threshold == 0.6 and discovery.input_size == 201
    assert impact.kind == "impact" and impact.class_names == ["high", "low", "no_ore"]
    recipe = json.loads((DEMO_MODELS / "RECIPE.json").read_text())
    assert "synthetic" in recipe["source"] and recipe["version"] == discovery.version == impact.version


def test_bundled_models_find_the_planted_mines_of_an_unseen_scene(tmp_path):
    from minescan.synth import synthesize_scene

    truth = synthesize_scene(tmp_path / "unseen.tif", size=1400, seed=424242)
    result = scan_scene(str(tmp_path / "unseen.tif"), *load_models(None, None), ScanConfig())
    grid = SceneGrid(result.p_mine.shape, result.scene.crs_wkt, tuple(result.scene.transform)[:6])
    national = build_national(result.detections, {result.scene.scene_id: grid})
    score = score_against_truth(national.detections, truth.objects)
    assert score.n_targets >= 5
    assert score.recall >= 0.8, score
    assert score.precision >= 0.7, score


def test_demo_runs_end_to_end_and_scores_against_the_planted_truth(tmp_path):
    from minescan.demo import DemoConfig, format_report, run_demo

    cfg = DemoConfig(seed=7, scenes_per_side=2, scene_px=40 * 27, parallel=2)
    report = run_demo(tmp_path / "demo", cfg)
    assert report["synthetic"] is True and report["scenes"] == 4
    assert report["planted_targets"] > 0 and report["recall"] >= 0.8 and report["precision"] >= 0.7
    national = tmp_path / "demo" / "run" / "national"
    for path in report["outputs"].values():
        assert Path(path).is_file() and Path(path).is_relative_to(national)
    assert json.loads((tmp_path / "demo" / "demo_report.json").read_text()) == report
    printed = format_report(report)
    assert "SYNTHETIC" in printed and "unregistered" in printed and "Terra Indígena Sintética" in printed
    # the register lacks some planted mines: the reduce finds them unregistered, and every
    # true site's registration and territory status agrees with what was planted
    reg, ter = report["register"], report["territory"]
    assert reg["missing_targets"] > 0 and reg["unregistered_true_sites"] > 0
    assert reg["missing_targets_found"] >= 0.8 * reg["missing_targets"]
    assert reg["true_sites_status_right"] == reg["true_sites"] == report["true_sites"]
    assert reg["phantom_entries_not_detected"] == 1
    assert ter["sites_inside"] > 0 and ter["true_sites_status_right"] == reg["true_sites"]
    assert ter["planted_targets_inside_found"] >= 0.8 * ter["planted_targets_inside"]
    assert printed.splitlines()[-2].endswith(str(national / "map.html"))
    assert str(national / "report.html") in printed.splitlines()[-1]
    shards = sorted(p.name for p in (tmp_path / "demo" / "run" / "scenes").iterdir())
    assert shards == ["r0000c0000", "r0000c0001", "r0001c0000", "r0001c0001"]
    for name in ("summary.md", "map.html", "report.html", "sites.kml"):
        assert "SYNTHETIC" in (national / name).read_text("utf-8"), name
    assert_mosaic_lies_on_the_scenes_cell_grid(tmp_path / "demo" / "run")
    # the mosaic reads the shards' zarr stores: one changed after its commit fails the reduce
    run = tmp_path / "demo" / "run"
    before = {p: p.read_bytes() for p in national.rglob("*") if p.is_file()}
    chunk = next(p for p in sorted((run / "scenes" / "r0001c0000" / "probability.zarr").rglob("*"))
                 if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[::-1])
    assert run_cli(["reduce", "--run", run]) == EXIT_BAD_INPUT
    assert {p: p.read_bytes() for p in national.rglob("*") if p.is_file()} == before


def assert_mosaic_lies_on_the_scenes_cell_grid(run):
    """The national mosaic starts at scene r0000c0000's first cell and holds each scene's owned cells."""
    import numpy as np
    import rasterio
    from minescan.outputs import read_probability_zarr

    first, transform, _, _ = read_probability_zarr(run / "scenes" / "r0000c0000" / "probability.zarr")
    last, _, _, attrs = read_probability_zarr(run / "scenes" / "r0001c0001" / "probability.zarr")
    with rasterio.open(run / "national" / "p_mine_mosaic.tif") as src:
        mosaic = src.read(1)
        assert src.transform.almost_equals(transform, precision=1e-12) and src.crs.to_epsg() == 4326
    row, col = attrs["global_offset"]
    assert mosaic.shape == (row + last.shape[0], col + last.shape[1])
    np.testing.assert_array_equal(mosaic[1:row, 1:col], first[1:row, 1:col])
    np.testing.assert_array_equal(mosaic[row + 1 : -1, col + 1 : -1], last[1:-1, 1:-1])
    with rasterio.open(run / "national" / "p_mine_mosaic.vrt") as vrt:
        np.testing.assert_array_equal(vrt.read(1), mosaic)
