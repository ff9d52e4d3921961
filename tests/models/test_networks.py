"""The paper's two networks, layer for layer (Balaniuk et al. 2020, Tables 2-3)."""

from __future__ import annotations

import numpy as np
import pytest
from minescan.models.networks import build_discovery_fcn, build_impact_cnn


def _layer_params(model):
    return [(layer.name, layer.count_params()) for layer in model.layers if layer.count_params()]


def test_discovery_fcn_matches_table_2():
    model = build_discovery_fcn(12)
    assert model.count_params() == 259_810
    assert _layer_params(model) == [
        ("conv2d_1", 3_488), ("conv2d_2", 18_496), ("conv2d_3", 36_928),
        ("conv2d_4", 200_768), ("conv2d_5", 130),
    ]
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D",
                     "MaxPooling2D", "Conv2D", "Dropout", "Conv2D"]


def test_impact_cnn_matches_table_3():
    model = build_impact_cnn(12)
    assert model.count_params() == 2_373_219
    assert _layer_params(model) == [
        ("conv2d_1", 1_568), ("conv2d_2", 8_256), ("dense_1", 2_360_320), ("dense_2", 3_075),
    ]
    assert model.get_layer("flatten").output.shape[-1] == 6 * 6 * 64


def test_discovery_fcn_emits_one_cell_per_201_chip_and_a_softmax():
    model = build_discovery_fcn(3)
    out = np.asarray(model(np.random.default_rng(0).normal(size=(2, 201, 201, 3)).astype("float32")))
    assert out.shape == (2, 1, 1, 2)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("h, w", [(201, 201), (228, 254), (500, 437)])
def test_discovery_fcn_output_grid_on_any_size(h, w):
    from minescan.scan.geometry import n_cells

    model = build_discovery_fcn(2)
    out = model(np.zeros((1, h, w, 2), "float32"))
    assert tuple(out.shape[1:3]) == (n_cells(h), n_cells(w))


def test_receptive_field_is_13_px_before_and_1_px_after_the_chip():
    """Perturb one input row at a time in a monotone copy of the network: exactly the rows
    in the derived 215-px field change the cell. (Read before the 1x1 softmax layer, which
    does not change the field but would saturate.)"""
    import keras

    model = build_discovery_fcn(1)
    for layer in model.layers:
        if layer.weights:
            kernel, bias = layer.get_weights()
            layer.set_weights([np.full_like(kernel, 0.01), np.zeros_like(bias)])
    features = keras.Model(model.input, model.get_layer("conv2d_4").output)
    height, cell = 27 * 14, 3
    base = np.ones((1, height, 201, 1), "float32")
    ref = np.asarray(features(base))[0, cell, 0]
    changed = []
    for r in range(height):
        x = base.copy()
        x[0, r] += 100.0
        changed.append(not np.array_equal(np.asarray(features(x))[0, cell, 0], ref))
    rows = np.flatnonzero(changed)
    assert len(rows) == 215
    assert (rows.min(), rows.max()) == (27 * cell - 13, 27 * cell + 201)
