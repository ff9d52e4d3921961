"""Training throughput (chips/s) of both networks through the real training loop.

Random uint16 chips of the paper's shapes go through the same index schedule, per-batch
normalisation, tf.data pipeline and custom step as real training. One warm-up epoch (graph
tracing) is timed apart. The paper's anchors: discovery 30 epochs of ~2,860 chips in
~100 s (≈ 860 chips/s incl. validation) and impact 30 epochs of 1,275 chips in 27 s
(≈ 1,400 chips/s), both on a Colab GPU (Balaniuk et al. 2020, §4.1–4.2).

    python -m minescan.training.bench --json bench.json      (or `minescan train bench`)
"""

from __future__ import annotations

import math
import platform
from typing import Any

import numpy as np

from ..models.card import library_versions
from .loop import CHIP_SIZE, Kind, TrainSettings, train

PAPER_ANCHOR = {
    "discovery": {"chips": 2860, "epochs": 30, "seconds": 100, "device": "Colab GPU"},
    "impact": {"chips": 1275, "epochs": 30, "seconds": 27, "device": "Colab GPU"},
}


def benchmark(
    kind: Kind, *, n_chips: int, epochs: int, batch_size: int, n_bands: int, strategy: Any, seed: int = 0
) -> dict[str, Any]:
    """Train `epochs` + 1 warm-up epochs on random chips; chips/s over the timed epochs."""
    from ..models.card import Normalization

    rng = np.random.default_rng(seed)
    size = CHIP_SIZE[kind]
    x = rng.integers(0, 4000, size=(n_chips, size, size, n_bands), dtype=np.uint16)
    n_classes = 2 if kind == "discovery" else 3
    y = np.arange(n_chips) % n_classes
    norm = Normalization(mean=[2000.0] * n_bands, std=[1150.0] * n_bands)
    settings = TrainSettings(epochs=epochs + 1, batch_size=batch_size, seed=seed)
    _, history = train(kind, x, y, np.arange(n_chips), norm, settings, strategy)
    timed = history.seconds[1:]
    replicas = strategy.num_replicas_in_sync
    steps = math.ceil(n_chips / (math.ceil(batch_size / replicas) * replicas))
    chips_seen = n_chips * len(timed)
    anchor = PAPER_ANCHOR[kind]
    return {
        "kind": kind,
        "chip_shape": [size, size, n_bands],
        "n_chips": n_chips,
        "batch_size": batch_size,
        "steps_per_epoch": steps,
        "timed_epochs": len(timed),
        "warmup_epoch_s": round(history.seconds[0], 3),
        "seconds": round(sum(timed), 3),
        "chips_per_s": round(chips_seen / sum(timed), 1),
        "replicas": int(replicas),
        "paper_chips_per_s": round(anchor["chips"] * anchor["epochs"] / anchor["seconds"], 1),
        "paper_anchor": anchor,
    }


def environment() -> dict[str, Any]:
    import os

    import tensorflow as tf

    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "python": platform.python_version(),
        **library_versions(),
    }
