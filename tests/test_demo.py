"""The bundled demo models and `minescan demo`, on synthetic areas they never saw."""

from __future__ import annotations

import json

from minescan.models.bundled import DEMO_MODELS, load_models
from minescan.models.card import read_model_card
from minescan.scan.config import ScanConfig
from minescan.scan.scanner import scan_scene
from minescan.sites.cluster import build_sites, score_against_truth


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
    _, dets = build_sites(result.detections)
    score = score_against_truth(dets, truth.objects)
    assert score.n_targets >= 5
    assert score.recall >= 0.8, score
    assert score.precision >= 0.7, score


def test_demo_runs_end_to_end_and_scores_against_the_planted_truth(tmp_path):
    from minescan.demo import DemoConfig, format_report, run_demo

    cfg = DemoConfig(seed=7, scenes_per_side=2, scene_px=40 * 27, parallel=2)
    report = run_demo(tmp_path / "demo", cfg)
    assert report["synthetic"] is True and report["scenes"] == 4
    assert report["planted_targets"] > 0 and report["recall"] >= 0.8 and report["precision"] >= 0.7
    for path in report["outputs"].values():
        assert (tmp_path / "demo" / "run" / "national" / path.rsplit("/", 1)[-1]).is_file()
    assert json.loads((tmp_path / "demo" / "demo_report.json").read_text()) == report
    assert "SYNTHETIC" in format_report(report)
    shards = sorted(p.name for p in (tmp_path / "demo" / "run" / "scenes").iterdir())
    assert shards == ["r0000c0000", "r0000c0001", "r0001c0000", "r0001c0001"]
