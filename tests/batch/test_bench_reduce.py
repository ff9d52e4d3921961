"""The reduce benchmark runs end to end on a tiny synthetic national run."""

from __future__ import annotations

import json

from minescan.batch.bench_reduce import format_bench, run_bench


def test_bench_reduce_builds_a_run_reduces_it_in_a_child_and_reports(tmp_path):
    figures = run_bench(tmp_path, n_scenes=2, per_scene=60, seed=3)
    assert figures["scenes"] == 2 and figures["detections"] >= 120 and figures["sites"] > 0
    assert figures["register_entries"] > 0 and figures["protected_areas"] == 300 and figures["regions"] > 0
    assert figures["reduce_wall_s"] > 0 and figures["reduce_cpu_s"] > 0 and 0 < figures["peak_rss_gib"] < 4
    assert json.loads((tmp_path / "bench-reduce.json").read_text()) == figures
    assert "SYNTHETIC" in format_bench(figures)
    again = run_bench(tmp_path, n_scenes=2, per_scene=60, seed=3)  # the run and layers are reused
    assert again["sites"] == figures["sites"] and again["build_s"] < figures["build_s"]


def test_the_benchmark_run_is_labelled_synthetic_on_its_map_and_report(tmp_path):
    figures = run_bench(tmp_path, n_scenes=1, per_scene=40, seed=5)
    national = next(tmp_path.glob("run-*/national"))
    summary = json.loads((national / "summary.json").read_text())
    assert figures["sites"] > 0 and summary["synthetic"] is True
    assert "SYNTHETIC" in (national / "report.html").read_text()
    assert "SYNTHETIC" in (national / "map.html").read_text()

