"""Seamless prediction: windows whose centres tile a scene, equal to one window over all of it."""

from __future__ import annotations

import numpy as np
import pytest

from minescan.models.card import Normalization
from minescan.series.predict import classify, predict_probability
from minescan.series.windows import STEP, WINDOW, check_window, pad_scene, plan_windows


@pytest.fixture(scope="module")
def small_unet():
    """A width-4 U-Net with random weights and non-trivial BatchNorm statistics."""
    import keras

    from minescan.series.unet import build_unet

    keras.utils.set_random_seed(3)
    model = build_unet(3, width=4)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma, beta, rng.normal(0, 0.1, mean.shape).astype("float32"),
                               rng.uniform(0.5, 2, var.shape).astype("float32")])
    return model


@pytest.mark.parametrize("rows, cols", [(300, 420), (256, 256), (37, 600), (1, 1)])
def test_kept_centres_cover_every_pixel_exactly_once(rows, cols):
    plan = plan_windows(rows, cols)
    hits = np.zeros((rows, cols), int)
    for w in plan.windows:
        assert w.row % 16 == 0 and w.col % 16 == 0
        assert w.row + WINDOW <= plan.padded_shape[0] and w.col + WINDOW <= plan.padded_shape[1]
        hits[w.out_row : w.out_row + w.out_rows, w.out_col : w.out_col + w.out_cols] += 1
    assert (hits == 1).all()
    assert plan.margin == (WINDOW - STEP) // 2 == 128


def test_window_and_step_must_keep_the_unets_grid():
    check_window(512, 256)
    for window, step in ((500, 256), (512, 250), (256, 512), (512, 240)):
        with pytest.raises(ValueError, match="multiples of 16"):
            check_window(window, step)


def test_sub_tiled_prediction_equals_one_window_over_the_whole_scene(small_unet):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 420, 3)).astype(np.float32)
    norm = Normalization(mean=[0.1, -0.2, 0.0], std=[1.0, 2.0, 0.5])
    tiled = predict_probability(small_unet, x, norm)
    plan = plan_windows(300, 420)
    padded = pad_scene(norm.apply(x), plan)
    whole = np.asarray(small_unet(padded[None], training=False))[0, ..., 0]
    m = plan.margin
    np.testing.assert_allclose(tiled, whole[m : m + 300, m : m + 420], atol=2e-5)
    assert len(plan.windows) == 4  # 2 × 2 windows of 512, the scene padded once


def test_smaller_steps_give_the_same_map(small_unet):
    x = np.random.default_rng(1).normal(size=(200, 260, 3)).astype(np.float32)
    norm = Normalization(mean=[0, 0, 0], std=[1, 1, 1])
    a = predict_probability(small_unet, x, norm, window=512, step=256)
    b = predict_probability(small_unet, x, norm, window=384, step=128)
    np.testing.assert_allclose(a, b, atol=2e-5)


def test_no_data_stays_no_data_and_classes_follow_the_threshold(small_unet):
    x = np.random.default_rng(2).normal(size=(40, 50, 3)).astype(np.float32)
    x[5, 7, 1] = np.nan
    p = predict_probability(small_unet, x, Normalization(mean=[0, 0, 0], std=[1, 1, 1]))
    assert np.isnan(p[5, 7]) and np.isfinite(np.delete(p.ravel(), 5 * 50 + 7)).all()
    classes = classify(np.array([[0.2, 0.5, np.nan]], np.float32), 0.5)
    assert classes.tolist() == [[0, 30, 255]] and classes.dtype == np.uint8


