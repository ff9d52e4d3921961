"""The paper's two networks, layer for layer (Balaniuk et al. 2020, Tables 2 and 3).

Discovery FCN (259,810 parameters for 12 bands): trained on 201x201 chips, where it emits a
single cell; run on a whole scene it emits one cell per 27 px (see `geometry`).
Impact CNN (2,373,219 parameters for 12 bands): 21x21 patches → high / low / no_ore.

Convolutions use Keras' default Glorot-uniform initialiser; the paper says "a normal weight
distribution" without its parameters, and the authors' notebook used Keras defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ores import IMPACT_CLASSES

if TYPE_CHECKING:
    import keras

DISCOVERY_CLASSES = ("not_mine", "mine")
#: index of the positive class in the discovery network's softmax
MINE_INDEX = DISCOVERY_CLASSES.index("mine")


def build_discovery_fcn(n_bands: int = 12) -> "keras.Model":
    """Table 2: a fully convolutional network with a 201-px field, stride 27, 2 classes."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(None, None, n_bands), name="input")
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2d_1")(inputs)
    x = layers.MaxPooling2D(3, strides=3, padding="valid", name="maxpooling1")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2d_2")(x)
    x = layers.MaxPooling2D(3, strides=3, padding="valid", name="maxpooling2")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2d_3")(x)
    x = layers.MaxPooling2D(3, strides=3, padding="valid", name="maxpooling3")(x)
    x = layers.Conv2D(64, 7, padding="valid", activation="relu", name="conv2d_4")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = layers.Conv2D(
        len(DISCOVERY_CLASSES), 1, activation="softmax", name="conv2d_5"
    )(x)
    return keras.Model(inputs, outputs, name="discovery_fcn")


def build_impact_cnn(n_bands: int = 12) -> "keras.Model":
    """Table 3: two 2x2 conv + pool blocks, a 1024 dense layer, 3-way softmax."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(21, 21, n_bands), name="input")
    x = layers.Conv2D(32, 2, padding="same", activation="relu", name="conv2d_1")(inputs)
    x = layers.MaxPooling2D(2, padding="same", name="maxpooling1")(x)
    x = layers.Conv2D(64, 2, padding="same", activation="relu", name="conv2d_2")(x)
    x = layers.MaxPooling2D(2, padding="same", name="maxpooling2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(1024, activation="relu", name="dense_1")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = layers.Dense(len(IMPACT_CLASSES), activation="softmax", name="dense_2")(x)
    return keras.Model(inputs, outputs, name="impact_cnn")
