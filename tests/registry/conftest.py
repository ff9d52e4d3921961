"""Models of known quality for the registry tests, derived from the bundled demo models.

The demo impact network scores ~0.91 recall on fresh synthetic patches; adding seeded
Gaussian noise to every weight (a fraction of each tensor's own spread) makes a weaker
network (0.2: ~0.82) and a much worse one (1.0: ~0.49), without training anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

NOISE = {"mid": 0.2, "bad": 1.0}


def perturbed(src: Path, out: Path, noise: float, seed: int = 5) -> Path:
    """A copy of the model directory `src` whose weights carry seeded Gaussian noise."""
    import keras
    import numpy as np
    from minescan.models.card import load_model_dir, save_model_dir

    loaded = load_model_dir(src)
    card = loaded.card
    rng = np.random.default_rng(seed)
    model = keras.models.clone_model(loaded.model)
    model.set_weights([w + rng.normal(0, noise * (w.std() + 1e-6), w.shape).astype(w.dtype)
                       for w in loaded.model.get_weights()])
    save_model_dir(model, out, kind=card.kind, name=card.name, version=f"{card.version}-noise{noise}",
                   bands=card.bands, normalization=card.normalization, class_names=card.class_names,
                   input_size=card.input_size, threshold=card.threshold,
                   training={"data": {"source": {"type": "demo model with noisy weights (test)"}}})
    return out


@pytest.fixture(scope="session")
def impact_models(tmp_path_factory) -> dict[str, Path]:
    """Impact model directories: "good" (the demo model), "mid" and "bad" (noisier)."""
    from minescan.models.bundled import DEMO_MODELS

    root = tmp_path_factory.mktemp("impact-models")
    models = {"good": DEMO_MODELS / "impact"}
    for name, noise in NOISE.items():
        models[name] = perturbed(DEMO_MODELS / "impact", root / name, noise)
    return models


@pytest.fixture(scope="session")
def eval_set(tmp_path_factory) -> Path:
    """A pinned evaluation set: synthetic impact patches from scenes the demo never saw."""
    from minescan.synth.chips import write_chip_set

    root = tmp_path_factory.mktemp("eval")
    write_chip_set(root / "impact", n=90, seed=77, kind="impact", scene_size=768, n_scenes=2)
    return root
