"""The MapBiomas U-Net, layer for layer (MapBiomas mining ATBD, Col. 9, §3, Table 2)."""

from __future__ import annotations

import numpy as np
import pytest
from minescan.series.unet import UNET_PARAMS_6_FEATURES, build_unet


def _convs(model):
    return [(layer.name, layer.count_params()) for layer in model.layers
            if type(layer).__name__ in ("Conv2D", "Conv2DTranspose")]


def test_published_unet_has_31_1_million_parameters_for_the_six_features():
    model = build_unet(6)
    assert model.count_params() == UNET_PARAMS_6_FEATURES == 31_057_025
    # each conv: 3·3·in·out + out; the first block sees the six features
    convs = dict(_convs(model))
    assert convs["enc1_conv1"] == 3 * 3 * 6 * 64 + 64
    assert convs["enc4_conv2"] == 3 * 3 * 512 * 512 + 512
    assert convs["centre_conv1"] == 3 * 3 * 512 * 1024 + 1024
    assert convs["up4"] == 2 * 2 * 1024 * 512 + 512  # 2×2 transposed, 1024 → 512
    assert convs["dec1_conv1"] == 3 * 3 * 128 * 64 + 64  # 64 up + 64 skip
    assert convs["p_mining"] == 64 + 1
    assert len(convs) == 2 * 9 + 4 + 1


def test_blocks_are_two_conv_batchnorm_relu_with_dropout_0_3_and_a_sigmoid():
    model = build_unet(6, width=4)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds[1:7] == ["Conv2D", "BatchNormalization", "ReLU"] * 2
    assert kinds.count("MaxPooling2D") == 4 and kinds.count("Conv2DTranspose") == 4
    assert kinds.count("Concatenate") == 4 and kinds.count("BatchNormalization") == 18
    assert model.get_layer("dropout").rate == 0.3
    assert model.get_layer("p_mining").activation.__name__ == "sigmoid"
    assert [model.get_layer(f"enc{i}_conv1").filters for i in range(1, 5)] == [4, 8, 16, 32]
    assert model.get_layer("centre_conv2").filters == 64


@pytest.mark.parametrize("h, w", [(256, 256), (64, 128)])
def test_unet_gives_one_probability_per_pixel(h, w):
    model = build_unet(3, width=2)
    out = np.asarray(model(np.random.default_rng(0).normal(size=(2, h, w, 3)).astype("float32")))
    assert out.shape == (2, h, w, 1)
    assert (out >= 0).all() and (out <= 1).all()


def test_width_scales_every_block():
    small, half = build_unet(6, width=8), build_unet(6, width=16)
    assert small.count_params() < half.count_params() < UNET_PARAMS_6_FEATURES
    with pytest.raises(ValueError, match="width"):
        build_unet(6, width=0)

def test_batchnorm_is_synchronised_across_replicas_and_follows_the_weights_closely():
    model = build_unet(6, width=2)
    norms = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert all(layer.synchronized and layer.momentum == 0.9 for layer in norms)
