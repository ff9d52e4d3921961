"""`minescan bench`: the work it divides by is the network's, and its figures hang together."""

from __future__ import annotations

import pytest
from minescan import bench
from minescan.scan.geometry import n_cells
from minescan.models.networks import build_discovery_fcn, build_impact_cnn


def _conv_flops(model, input_shape):
    """2 × multiply-adds of every convolution and dense layer, from Keras' own output shapes."""
    import keras

    total, shape = 0.0, input_shape
    for layer in model.layers[1:]:
        out = layer.compute_output_shape(shape)
        if isinstance(layer, keras.layers.Conv2D):
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += 2.0 * k * shape[-1] * layer.filters * out[1] * out[2]
        elif isinstance(layer, keras.layers.Dense):
            total += 2.0 * shape[-1] * layer.units
        shape = out
    return total


@pytest.mark.parametrize("h, w", [(201, 201), (2478, 2457), (403, 761)])
def test_discovery_flops_are_the_networks_multiply_adds(h, w):
    assert bench.discovery_flops(h, w, 12) == _conv_flops(build_discovery_fcn(12), (1, h, w, 12))


def test_impact_flops_are_the_networks_multiply_adds():
    assert bench.impact_flops(5, 12) == pytest.approx(5 * _conv_flops(build_impact_cnn(12), (1, 21, 21, 12)), rel=0.002)


def test_bench_scans_a_scene_and_reports_each_figure_against_its_target(tmp_path):
    figures = bench.run_bench(tmp_path, size=420, memory_budget_mb=64)
    assert (tmp_path / "bench.json").exists() and figures["counts"]["cells"] == n_cells(420) ** 2
    assert figures["tiles"] > 1 and figures["usable_cpus"] >= 1
    assert figures["wall_vs_ideal"] == pytest.approx(figures["scan_wall_s"] / figures["ideal_s"], rel=0.02)
    assert set(figures["checks"]) == {"wall_vs_ideal", "discovery_vs_gemm", "peak_rss", "halo_overhead",
                                      "memory_budget", "impact_stage", "write_stage"}
    text = bench.format_bench(figures)
    assert ("overlapped" if figures["stages_overlapped"] else "one after another") in text
    assert text.count("PASS") + text.count("FAIL") == 7
