"""The MapBiomas mining U-Net (MapBiomas mining ATBD, Col. 9, §3 and Table 2).

Ronneberger et al. (2015) with batch normalisation: four encoder blocks of 64, 128, 256
and 512 filters and a 1024-filter centre, each block two 3×3 convolutions + BatchNorm +
ReLU; 2×2 max-pooling down; 2×2 stride-2 transposed convolutions up, each concatenated
with the encoder block of the same size; dropout 0.3 at the end of the contracting path
(where Ronneberger et al. put theirs); a 1×1 convolution with a sigmoid gives p(mining)
per pixel, trained with binary cross-entropy on 256×256 tiles. 31,057,025 parameters for
the method's six features (about 31.1 M, as published).

`width` is the first block's filter count (64 in the method); tests and the demo train
narrower networks with the same shape. BatchNorm statistics are synchronised across the
replicas of a tf.distribute strategy, so N replicas take the step one device would on the
global batch and every worker ends with the same moving statistics. The network is fully convolutional: any input whose
sides are multiples of 16 works, which the seamless prediction in `predict` relies on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

#: the method's filter count in the first encoder block
WIDTH = 64
#: encoder depth: four 2×2 poolings, so tile sides must be multiples of 2**DEPTH
DEPTH = 4
#: the method's training tile edge in pixels
TILE = 256
DROPOUT = 0.3
#: moving-average momentum of BatchNorm's inference statistics (the ATBD gives none): 0.9,
#: PyTorch's default, so the statistics follow the weights closely; Keras' 0.99 lags ~100
#: steps behind, and a short training then ends with statistics of an older network
BN_MOMENTUM = 0.9
CLASS_NAMES = ("not_mining", "mining")
#: parameters of the published network (width 64) for the method's six features
UNET_PARAMS_6_FEATURES = 31_057_025


def _conv_block(x, filters: int, name: str):
    from keras import layers

    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=True, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_unet(n_features: int = 6, width: int = WIDTH) -> "keras.Model":
    """The U-Net for `n_features` input channels and `width` filters in the first block."""
    import keras
    from keras import layers

    if width < 1 or n_features < 1:
        raise ValueError(f"width and n_features must be ≥ 1, got {width} and {n_features}")
    inputs = keras.Input(shape=(None, None, n_features), name="input")
    x, skips = inputs, []
    for level in range(DEPTH):
        x = _conv_block(x, width * 2**level, f"enc{level + 1}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level + 1}")(x)
    x = _conv_block(x, width * 2**DEPTH, "centre")
    x = layers.Dropout(DROPOUT, name="dropout")(x)
    for level in reversed(range(DEPTH)):
        filters = width * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level + 1}")(x)
        x = layers.Concatenate(name=f"skip{level + 1}")([x, skips[level]])
        x = _conv_block(x, filters, f"dec{level + 1}")
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="p_mining")(x)
    return keras.Model(inputs, outputs, name="mapbiomas_unet")
