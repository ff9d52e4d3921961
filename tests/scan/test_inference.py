"""Seamless sub-tiled inference equals whole-array TensorFlow inference, for every backend
(docs/ARCHITECTURE.md, "Geometry").

The stitched grids come from `tiles.run_tiles`, the loop every scan runs.
"""

from __future__ import annotations

import numpy as np
import pytest
from minescan.models.card import Normalization, verified_model_dir
from minescan.scan import geometry
from minescan.scan.backends import installed_backends, load_network, tensorflow_network
from minescan.scan.inference import classify_patches, discovery_cells, extract_patches
from minescan.scan.tiles import TileContext, run_tiles

BACKENDS = installed_backends()


@pytest.fixture(scope="module")
def models(tiny_models):
    return verified_model_dir(tiny_models / "discovery"), verified_model_dir(tiny_models / "impact")


@pytest.fixture(scope="module")
def reference(models):
    """Whole-array TensorFlow inference, the contract every backend is held to."""
    return tensorflow_network(models[0].model), tensorflow_network(models[1].model)


def _stitched(discovery, impact, image, max_pixels):
    """p(mine) of a normalised (H, W, B) array through the scan's tile loop."""
    height, width, n_bands = image.shape
    identity = Normalization(mean=[0.0] * n_bands, std=[1.0] * n_bands)
    ctx = TileContext(scene_shape=(height, width), nodata=(None,) * n_bands, discovery=discovery,
                      discovery_normalization=identity, impact=impact, impact_normalization=identity,
                      n_classes=3, threshold=2.0, max_nodata_fraction=1.0, impact_batch_size=64)
    raw = np.moveaxis(image, -1, 0)
    out = np.full((geometry.n_cells(height), geometry.n_cells(width)), np.nan, np.float32)
    tiles = geometry.plan_subtiles(height, width, max_pixels)
    read = lambda t: raw[:, t.row.pixels.start : t.row.pixels.stop, t.col.pixels.start : t.col.pixels.stop]  # noqa: E731
    for result in run_tiles(ctx, tiles, read):
        t = result.tile
        out[t.row.cells.start : t.row.cells.stop, t.col.cells.start : t.col.cells.stop] = result.p_mine
    return out, len(tiles)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "h, w, max_pixels",
    [(403, 761, 260 * 260), (500, 437, 250 * 250), (229, 1001, 300 * 300), (637, 511, 330 * 290)],
)
def test_stitched_equals_whole_array_tensorflow(models, reference, backend, h, w, max_pixels):
    x = np.random.default_rng(h * w).normal(size=(h, w, 12)).astype(np.float32)
    whole = discovery_cells(reference[0], x)
    discovery = load_network(models[0], backend)
    tiled, n_tiles = _stitched(discovery, load_network(models[1], backend), x, max_pixels)
    assert whole.shape == (geometry.n_cells(h), geometry.n_cells(w))
    assert n_tiles > 1
    assert np.isfinite(tiled).all()
    assert np.max(np.abs(whole - tiled)) <= 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_impact_network_equals_tensorflow(models, reference, backend):
    patches = np.random.default_rng(3).normal(size=(150, 21, 21, 12)).astype(np.float32)
    expected = classify_patches(reference[1], patches, 3, batch_size=64)
    got = classify_patches(load_network(models[1], backend), patches, 3, batch_size=64)
    assert got.shape == (150, 3)
    assert np.max(np.abs(got - expected)) <= 1e-5


def test_fewer_than_189_rows_give_no_cells_and_no_network_call(reference):
    out, n_tiles = _stitched(reference[0], reference[1], np.zeros((188, 300, 12), np.float32), None)
    assert out.shape == (0, geometry.n_cells(300)) and n_tiles == 0


def test_patch_comes_from_neighbouring_data_inside_the_scene():
    scene = np.arange(60 * 50, dtype=np.float32).reshape(60, 50, 1)
    window = scene[20:60, 10:50]
    (patch,) = extract_patches(window, np.array([[35, 30]]), window_origin=(20, 10), scene_shape=(60, 50))
    np.testing.assert_array_equal(patch, scene[25:46, 20:41])


def test_patch_is_reflected_only_at_the_true_scene_edge():
    scene = np.arange(30 * 30, dtype=np.float32).reshape(30, 30, 1)
    patches = extract_patches(scene, np.array([[2, 28], [15, 15]]), window_origin=(0, 0), scene_shape=(30, 30))
    padded = np.pad(scene[:, :, 0], 10, mode="reflect")
    np.testing.assert_array_equal(patches[0, :, :, 0], padded[2:23, 28:49])
    np.testing.assert_array_equal(patches[1, :, :, 0], scene[5:26, 5:26, 0])
    assert patches.shape == (2, 21, 21, 1)


def test_patch_outside_the_window_read_is_refused():
    scene = np.zeros((100, 100, 1), np.float32)
    with pytest.raises(ValueError, match=r"\(35, 50\) is not inside the window"):
        extract_patches(scene[:40], np.array([[10, 10], [35, 50]]), window_origin=(0, 0), scene_shape=(100, 100))
