"""The one training loop, for every `tf.distribute` strategy.

A custom loop rather than Keras `fit`, because `fit` fails under
MultiWorkerMirroredStrategy (keras#20585) and one loop for all strategies keeps the numbers
comparable. Each step every replica takes its slice of one global batch; Keras 3's
optimizer all-reduces (sums) the gradients, and the loss is averaged over the *global*
batch (`tf.nn.compute_average_loss`), so N replicas take the same step one device would.

Batches are an index schedule fixed up front from the seed (one shuffled permutation per
epoch, wrapped to whole global batches), so every worker agrees on the step count and on
which chips each replica reads, without shipping data between workers.

What is learnt is an `Objective`: `Classification` for the paper's two networks (one class
per chip, categorical cross-entropy on the softmax *output*, not logits; the authors'
notebook mixed the two; docs/ARCHITECTURE.md, "The networks") and `Segmentation` for the
MapBiomas U-Net (a 0/1 mask per tile, binary cross-entropy on the sigmoid over the labelled
pixels only).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..models.card import Normalization
from ..models.networks import (
    DISCOVERY_CLASSES,
    IMPACT_CLASSES,
    build_discovery_fcn,
    build_impact_cnn,
)
from ..scan import geometry

Kind = Literal["discovery", "impact"]

#: the paper's learning rates: Keras' Adam default for discovery, 1e-4 for impact (§3.3–3.4);
#: the MapBiomas ATBD states none for its U-Net, so it gets Keras' Adam default
DEFAULT_LEARNING_RATE = {"discovery": 1e-3, "impact": 1e-4, "series": 1e-3}
CHIP_SIZE = {"discovery": geometry.CHIP, "impact": geometry.PATCH}
CLASS_NAMES = {"discovery": DISCOVERY_CLASSES, "impact": IMPACT_CLASSES}


class TrainSettings(BaseModel):
    """How one network is trained."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(30, ge=1, description="passes over the training chips (paper: 30)")
    batch_size: int = Field(32, ge=1, description="global batch (rounded up to whole replicas)")
    learning_rate: float | None = Field(None, gt=0, description="Adam lr; None = paper's value")
    seed: int = Field(0, description="seed for shuffling, initial weights and dropout")
    deterministic: bool = Field(False, description="TensorFlow op determinism (slower on GPU)")
    mixed_precision: bool = Field(False, description="float16 compute on GPU, float32 weights")

    def lr(self, kind: str) -> float:
        return self.learning_rate or DEFAULT_LEARNING_RATE[kind]


@dataclass
class History:
    """Per-epoch curves (Figures 7–8 of the paper)."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in vars(self).items()}


def build_network(kind: Kind, n_bands: int) -> Any:
    return build_discovery_fcn(n_bands) if kind == "discovery" else build_impact_cnn(n_bands)


#: label value a segmentation mask uses for "no data or not labelled": not scored
IGNORE = 255


@dataclass(frozen=True)
class Classification:
    """One class index per chip → one-hot targets, categorical cross-entropy on the softmax."""

    kind: Kind

    @property
    def n_classes(self) -> int:
        return len(CLASS_NAMES[self.kind])

    def build(self, n_bands: int) -> Any:
        return build_network(self.kind, n_bands)

    def target_shape(self, size: int) -> tuple[int, ...]:
        return (self.n_classes,)

    def targets(self, labels: np.ndarray) -> np.ndarray:
        return np.eye(self.n_classes, dtype=np.float32)[labels]

    def per_example(self, targets: Any, output: Any) -> tuple[Any, Any]:
        """(loss, correct) per example, as TensorFlow tensors."""
        import keras
        import tensorflow as tf

        proba = tf.reshape(tf.cast(output, tf.float32), (-1, self.n_classes))
        loss = keras.losses.categorical_crossentropy(targets, proba, from_logits=False)
        correct = tf.cast(tf.equal(tf.argmax(proba, 1), tf.argmax(targets, 1)), tf.float32)
        return loss, correct

    def scores(self, labels: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
        """(cross-entropy, accuracy) of `predict`'s output, in numpy."""
        p = np.clip(proba[np.arange(labels.size), labels], 1e-7, 1.0)
        return float(-np.mean(np.log(p))), float(np.mean(proba.argmax(1) == labels))


@dataclass(frozen=True)
class Segmentation:
    """A (row, col) mask per tile, 1 positive, 0 negative, `IGNORE` unscored → per-pixel
    binary cross-entropy on a one-channel sigmoid, averaged over each tile's scored pixels.

    `build(n_bands)` makes the network (the U-Net at some width); `kind` names the learning
    rate's default.
    """

    build: Callable[[int], Any]
    kind: str = "series"

    def target_shape(self, size: int) -> tuple[int, ...]:
        return (size, size)

    def targets(self, labels: np.ndarray) -> np.ndarray:
        return labels.astype(np.float32)

    def per_example(self, targets: Any, output: Any) -> tuple[Any, Any]:
        import keras
        import tensorflow as tf

        proba = tf.cast(output[..., 0], tf.float32)
        scored = tf.cast(tf.not_equal(targets, IGNORE), tf.float32)
        truth = tf.minimum(targets, 1.0)
        pixel = keras.losses.binary_crossentropy(truth[..., None], proba[..., None]) * scored
        n = tf.maximum(tf.reduce_sum(scored, axis=(1, 2)), 1.0)
        hits = tf.cast(tf.equal(tf.cast(proba >= 0.5, tf.float32), truth), tf.float32) * scored
        return tf.reduce_sum(pixel, axis=(1, 2)) / n, tf.reduce_sum(hits, axis=(1, 2)) / n

    def scores(self, labels: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
        truth = labels.reshape(labels.shape[0], -1)
        scored = truth != IGNORE
        if not scored.any():
            return float("nan"), float("nan")
        p = np.clip(proba[scored], 1e-7, 1 - 1e-7)
        t = truth[scored] == 1
        loss = -np.mean(np.where(t, np.log(p), np.log1p(-p)))
        return float(loss), float(np.mean((p >= 0.5) == t))


Objective = Classification | Segmentation


def objective_for(task: Kind | Objective) -> Objective:
    return Classification(task) if isinstance(task, str) else task


class _DropRetracingWarning(logging.Filter):
    """Every fold builds a new network, so its step function is traced anew: expected, not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def _quiet_retracing() -> None:
    tf_logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _DropRetracingWarning) for f in tf_logger.filters):
        tf_logger.addFilter(_DropRetracingWarning())


def seed_everything(seed: int, deterministic: bool) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def normalized_batch(x: np.ndarray, idx: np.ndarray, norm: Normalization) -> np.ndarray:
    """Normalised chips; a no-data (NaN) input becomes 0, the band's training mean, so the
    network sees a neutral value where a mosaic had no observation."""
    return np.nan_to_num(norm.apply(x[idx]), copy=False)


def batch_schedule(train_idx: np.ndarray, epochs: int, global_batch: int, seed: int) -> np.ndarray:
    """(epochs·steps, global_batch) chip indices: a fresh permutation per epoch, wrapped."""
    steps = math.ceil(train_idx.size / global_batch)
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(epochs):
        perm = rng.permutation(train_idx)
        wrapped = np.resize(perm, steps * global_batch)  # np.resize repeats from the start
        rows.append(wrapped.reshape(steps, global_batch))
    return np.concatenate(rows)


@dataclass(frozen=True)
class BatchPlan:
    """The global batch, split evenly over the replicas, and the whole run's index schedule."""

    global_batch: int
    per_replica: int
    schedule: np.ndarray  # (epochs · steps_per_epoch, global_batch) chip indices
    steps_per_epoch: int

    @classmethod
    def make(cls, train_idx: np.ndarray, settings: TrainSettings, replicas: int) -> BatchPlan:
        global_batch = math.ceil(settings.batch_size / replicas) * replicas
        schedule = batch_schedule(train_idx, settings.epochs, global_batch, settings.seed)
        return cls(global_batch, global_batch // replicas, schedule, schedule.shape[0] // settings.epochs)


def train(
    task: Kind | Objective,
    x: np.ndarray,
    y: np.ndarray,
    train_idx: np.ndarray,
    norm: Normalization,
    settings: TrainSettings,
    strategy: Any,
    *,
    val_idx: np.ndarray | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    max_steps: int | None = None,
) -> tuple[Any, History]:
    """Train a fresh network on `x[train_idx]`; return the float32 model and its curves.

    `task` is a paper network's kind or an `Objective`. `val_idx`, when given, is scored
    after every epoch (on every worker alike, no collectives). `max_steps` stops early
    (benchmarks and tests).
    """
    import time

    objective = objective_for(task)
    plan = BatchPlan.make(train_idx, settings, strategy.num_replicas_in_sync)
    seed_everything(settings.seed, settings.deterministic)
    _quiet_retracing()
    model, optimizer = _build_model(objective, x.shape[-1], settings, strategy)
    batches = _distributed_batches(objective, x, y, norm, plan, settings, strategy)
    train_step = _train_step(objective, model, optimizer, plan, settings, strategy)

    history = History()
    done = 0
    for epoch in range(settings.epochs):
        start = time.perf_counter()
        loss_sum = correct_sum = 0.0
        steps = plan.steps_per_epoch if max_steps is None else min(plan.steps_per_epoch, max_steps - done)
        for _ in range(steps):
            loss, correct = train_step(next(batches))
            loss_sum += float(loss)
            correct_sum += float(correct)
        done += steps
        history.loss.append(loss_sum / max(steps, 1))
        history.accuracy.append(correct_sum / max(steps * plan.global_batch, 1))
        if val_idx is not None and val_idx.size:
            val_loss, val_accuracy = objective.scores(y[val_idx], predict(model, x, val_idx, norm))
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_accuracy)
        history.seconds.append(time.perf_counter() - start)
        if on_epoch is not None:
            on_epoch(epoch, {k: v[-1] for k, v in history.as_dict().items() if v})
        if max_steps is not None and done >= max_steps:
            break
    if settings.mixed_precision:
        model = _as_float32(objective, model, x.shape[-1])
    return model, history


def _build_model(objective: Objective, n_bands: int, settings: TrainSettings, strategy: Any) -> tuple[Any, Any]:
    """A fresh network and its Adam optimizer, built under the strategy's scope (and the
    mixed-float16 policy when asked, restored afterwards)."""
    import keras

    policy = "mixed_float16" if settings.mixed_precision else "float32"
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        with strategy.scope():
            model = objective.build(n_bands)
            optimizer = keras.optimizers.Adam(learning_rate=settings.lr(objective.kind))
            if settings.mixed_precision:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(model.trainable_variables)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    return model, optimizer


def _distributed_batches(objective: Objective, x: np.ndarray, y: np.ndarray, norm: Normalization,
                         plan: BatchPlan, settings: TrainSettings, strategy: Any) -> Any:
    """An iterator over the distributed batches of `plan.schedule`: normalised chips and
    their targets, each pipeline feeding its local replicas their slices."""
    import tensorflow as tf

    size, n_bands = x.shape[1], x.shape[-1]
    target_shape = objective.target_shape(size)
    replicas, per_replica = strategy.num_replicas_in_sync, plan.per_replica

    def load(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return normalized_batch(x, idx, norm), objective.targets(y[idx])

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        # Pipeline p feeds its local replicas, in order, their slices of each global batch.
        local = ctx.num_replicas_in_sync // ctx.num_input_pipelines
        first = ctx.input_pipeline_id * local
        schedule = plan.schedule
        mine = schedule.reshape(schedule.shape[0], replicas, per_replica)[:, first : first + local]
        ds = tf.data.Dataset.from_tensor_slices(mine.reshape(-1, per_replica))
        ds = ds.map(
            lambda i: tf.numpy_function(load, [i], (tf.float32, tf.float32), stateful=False),
            num_parallel_calls=1 if settings.deterministic else tf.data.AUTOTUNE,
            deterministic=True,
        )
        ds = ds.map(lambda a, b: (tf.ensure_shape(a, (per_replica, size, size, n_bands)),
                                  tf.ensure_shape(b, (per_replica, *target_shape))))
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return ds.with_options(options).prefetch(2)

    return iter(strategy.distribute_datasets_from_function(dataset_fn))


def _train_step(objective: Objective, model: Any, optimizer: Any, plan: BatchPlan,
                settings: TrainSettings, strategy: Any) -> Callable[[Any], tuple[Any, Any]]:
    """One compiled step over a global batch: every replica's gradients, the loss averaged
    over the global batch, returning (summed loss, summed correct)."""
    import tensorflow as tf

    def step_fn(xb: tf.Tensor, yb: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            per_example, correct = objective.per_example(yb, model(xb, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=plan.global_batch)
            scaled = optimizer.scale_loss(loss) if settings.mixed_precision else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, tf.reduce_sum(correct)

    @tf.function
    def train_step(batch: Any) -> tuple[tf.Tensor, tf.Tensor]:
        loss, correct = strategy.run(step_fn, args=batch)
        sum_ = tf.distribute.ReduceOp.SUM
        return strategy.reduce(sum_, loss, axis=None), strategy.reduce(sum_, correct, axis=None)

    return train_step


def predict(model: Any, x: np.ndarray, idx: np.ndarray, norm: Normalization, batch: int = 64) -> np.ndarray:
    """Outputs for chips `x[idx]`, one row per chip: class probabilities (n, classes), the
    FCN's (1, 1, C) squeezed; a U-Net's (n, rows · cols) pixel probabilities."""
    out = []
    for start in range(0, idx.size, batch):
        xb = normalized_batch(x, idx[start : start + batch], norm)
        proba = np.asarray(model(xb, training=False), dtype=np.float64)
        out.append(proba.reshape(proba.shape[0], -1))
    return np.concatenate(out) if out else np.zeros((0, 0))


def _as_float32(objective: Objective, model: Any, n_bands: int) -> Any:
    """A float32 copy of a mixed-precision model, so the scan never computes in float16."""
    plain = objective.build(n_bands)
    plain.set_weights(model.get_weights())
    return plain
