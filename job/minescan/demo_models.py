"""The bundled demo models: the paper's two networks trained on synthetic chips.

They exist so `make demo` and a first `minescan scan` work with no model of the user's.
They know only the synthesiser's world; they are not models of real Sentinel-2 imagery.
`make demo-models` rebuilds them from scratch (`minescan models train-demo`).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bands import DEFAULT_BANDS
from .models import DISCOVERY_CLASSES, IMPACT_CLASSES, build_discovery_fcn, build_impact_cnn
from .modeldir import Normalization, save_model_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoRecipe:
    """Everything that decides the demo models; recorded in their cards."""

    seed: int = 20201204  # the paper's publication date
    n_scenes: int = 6
    scene_size: int = 1536
    n_discovery_chips: int = 1000
    n_impact_patches: int = 2400
    discovery_epochs: int = 6
    impact_epochs: int = 20
    batch_size: int = 32
    validation_fraction: float = 0.15
    threshold: float = 0.6


def band_statistics(x: np.ndarray) -> Normalization:
    """Per-band mean and std over every pixel of (n, h, w, B) training chips."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    std = flat.std(axis=0)
    return Normalization(mean=flat.mean(axis=0).tolist(), std=np.where(std > 0, std, 1.0).tolist())


def _augment_dataset(x: np.ndarray, y_onehot: np.ndarray, batch: int, seed: int, augment: bool):
    """Flips and quarter turns: a mine has no preferred orientation (the paper augmented too)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y_onehot))
    if augment:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)

        def aug(img, label):
            img = tf.image.random_flip_left_right(img, seed=seed)
            img = tf.image.random_flip_up_down(img, seed=seed + 1)
            k = tf.random.uniform((), 0, 4, dtype=tf.int32, seed=seed + 2)
            return tf.image.rot90(img, k), label

        ds = ds.map(aug, num_parallel_calls=1)
    return ds.batch(batch).prefetch(1)


def _train(model, x, y, n_classes, lr, epochs, recipe: DemoRecipe, name: str):
    import keras

    rng = np.random.default_rng(recipe.seed)
    order = rng.permutation(len(x))
    n_val = int(len(x) * recipe.validation_fraction)
    val, train = order[:n_val], order[n_val:]
    onehot = np.eye(n_classes, dtype=np.float32)[y]
    target_shape = model.output_shape
    if len(target_shape) == 4:  # the FCN emits (1, 1, classes) per 201-px chip
        onehot = onehot[:, None, None, :]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss=keras.losses.CategoricalCrossentropy(from_logits=False),
        metrics=["accuracy"],
    )
    history = model.fit(
        _augment_dataset(x[train], onehot[train], recipe.batch_size, recipe.seed, True),
        validation_data=_augment_dataset(x[val], onehot[val], recipe.batch_size, recipe.seed, False),
        epochs=epochs,
        verbose=2,
    )
    val_acc = float(history.history["val_accuracy"][-1])
    log.info("trained demo model", extra={"model": name, "val_accuracy": val_acc})
    return {
        "holdout_accuracy": round(val_acc, 4),
        "holdout_size": int(n_val),
        "train_accuracy": round(float(history.history["accuracy"][-1]), 4),
    }


def train_demo_models(out_dir: str | Path, recipe: DemoRecipe | None = None, *, overwrite: bool = False) -> dict:
    """Synthesise scenes, cut chips, train both networks, write `out_dir/{discovery,impact}`."""
    import keras
    import tensorflow as tf

    from . import synth

    recipe = recipe or DemoRecipe()
    keras.utils.set_random_seed(recipe.seed)
    tf.config.experimental.enable_op_determinism()
    out = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="minescan-demo-train-") as tmp:
        truths = synth.make_training_scenes(tmp, recipe.n_scenes, recipe.scene_size, recipe.seed)
        xd, yd, _ = synth.sample_discovery_chips(truths, recipe.n_discovery_chips, recipe.seed)
        xi, yi, _ = synth.sample_impact_patches(truths, recipe.n_impact_patches, recipe.seed + 1)
    training = {
        "source": "minescan synthetic scenes (not real imagery)",
        "recipe": recipe.__dict__,
    }
    results = {}
    norm_d = band_statistics(xd)
    discovery = build_discovery_fcn(len(DEFAULT_BANDS))
    metrics = _train(discovery, norm_d.apply(xd), yd, 2, 1e-3, recipe.discovery_epochs, recipe, "discovery")
    results["discovery"] = save_model_dir(
        discovery, out / "discovery", kind="discovery", name="demo-discovery", version="demo-1",
        bands=DEFAULT_BANDS, normalization=norm_d, class_names=DISCOVERY_CLASSES, input_size=201,
        threshold=recipe.threshold, overwrite=overwrite,
        training={**training, "chips": {c: int((yd == k).sum()) for k, c in enumerate(DISCOVERY_CLASSES)},
                  "chip_size": 201, "bands": list(DEFAULT_BANDS)},
        metrics=metrics,
    )
    norm_i = band_statistics(xi)
    impact = build_impact_cnn(len(DEFAULT_BANDS))
    metrics = _train(impact, norm_i.apply(xi), yi, 3, 1e-4, recipe.impact_epochs, recipe, "impact")
    results["impact"] = save_model_dir(
        impact, out / "impact", kind="impact", name="demo-impact", version="demo-1",
        bands=DEFAULT_BANDS, normalization=norm_i, class_names=IMPACT_CLASSES, input_size=21,
        overwrite=overwrite,
        training={**training, "chips": {c: int((yi == k).sum()) for k, c in enumerate(IMPACT_CLASSES)},
                  "chip_size": 21, "bands": list(DEFAULT_BANDS)},
        metrics=metrics,
    )
    return results
