"""Seamless sub-tiled inference equals whole-array inference (docs/ARCHITECTURE.md, "Geometry")."""

from __future__ import annotations

import numpy as np
import pytest
from minescan.models.networks import build_discovery_fcn
from minescan.scan import geometry
from minescan.scan.inference import (
    DiscoveryRunner,
    discovery_probabilities,
    extract_patches,
)


@pytest.fixture(scope="module")
def runner():
    import keras

    keras.utils.set_random_seed(7)
    return DiscoveryRunner(build_discovery_fcn(3))


@pytest.mark.parametrize(
    "h, w, max_pixels",
    [(403, 761, 260 * 260), (500, 437, 250 * 250), (229, 1001, 300 * 300), (637, 511, 330 * 290)],
)
def test_subtiled_equals_whole_array_on_odd_sizes(runner, h, w, max_pixels):
    x = np.random.default_rng(h * w).normal(size=(h, w, 3)).astype(np.float32)
    whole = discovery_probabilities(runner, x)
    tiled = discovery_probabilities(runner, x, max_pixels=max_pixels)
    assert whole.shape == (geometry.n_cells(h), geometry.n_cells(w))
    assert len(geometry.plan_subtiles(h, w, max_pixels)) > 1
    assert np.isfinite(tiled).all()
    assert np.max(np.abs(whole - tiled)) <= 1e-5


def test_fewer_than_189_rows_give_no_cells(runner):
    out = discovery_probabilities(runner, np.zeros((188, 300, 3), np.float32))
    assert out.shape == (0, geometry.n_cells(300))


def test_patch_comes_from_neighbouring_data_inside_the_scene():
    scene = np.arange(60 * 50, dtype=np.float32).reshape(60, 50, 1)
    window = scene[20:60, 10:50]
    (patch,) = extract_patches(window, np.array([[35, 30]]), window_origin=(20, 10), scene_shape=(60, 50))
    np.testing.assert_array_equal(patch, scene[25:46, 20:41])


def test_patch_is_reflected_only_at_the_true_scene_edge():
    scene = np.arange(30 * 30, dtype=np.float32).reshape(30, 30, 1)
    (patch,) = extract_patches(scene, np.array([[2, 28]]), window_origin=(0, 0), scene_shape=(30, 30))
    expected = np.pad(scene[:, :, 0], 10, mode="reflect")[2:23, 28:49]
    np.testing.assert_array_equal(patch[:, :, 0], expected)
    assert patch.shape == (21, 21, 1)


def test_patch_outside_the_window_read_is_refused():
    scene = np.zeros((100, 100, 1), np.float32)
    with pytest.raises(ValueError, match="not inside the window"):
        extract_patches(scene[:40], np.array([[35, 50]]), window_origin=(0, 0), scene_shape=(100, 100))
