"""The filter benchmark's synthetic cube and its memory bound (the figures come from make bench-series)."""

from __future__ import annotations

import numpy as np
from minescan.series.bench import memory_bound_bytes, run_filter_bench, synthetic_window
from minescan.series.cube_io import Window, open_class_cube
from minescan.series.filters import MINING, NODATA


def test_a_synthetic_window_depends_only_on_the_seed_and_the_window():
    w = Window(512, 1024, 64, 64)
    a, b = synthetic_window(w, 20, 7), synthetic_window(w, 20, 7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, synthetic_window(Window(0, 0, 64, 64), 20, 7))
    assert {0, MINING} <= set(np.unique(a).tolist()) <= {0, MINING, NODATA}


def test_the_memory_bound_does_not_grow_with_the_cube():
    assert memory_bound_bytes(20, 512, 2) < 800 * 2**20
    assert memory_bound_bytes(20, 512, 4) > memory_bound_bytes(20, 512, 2)


def test_a_tiny_bench_runs_and_labels_its_cube_synthetic(tmp_path):
    figures = run_filter_bench(tmp_path, size=96, years=6, chunk=32, threads=1)
    assert figures["windows"] == 9 and figures["within_bound"] is True
    assert figures["cube"]["synthetic"] is True
    assert open_class_cube(tmp_path / "filtered.zarr").attrs["synthetic"] is True
    assert (tmp_path / "bench-series.json").exists()
