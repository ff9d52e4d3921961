"""The bundled demo models: the paper's two networks trained on synthetic chips.

They exist so `make demo` and a first `minescan scan` work with no model of the user's.
They know only the synthesiser's world; they are not models of real Sentinel-2 imagery.
`make demo-models` rebuilds them through the same path a user trains with: synthetic chips
in the authors' folder layout (`minescan synth chips`), then `minescan train`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoRecipe:
    """Everything that decides the demo models; recorded in their cards."""

    seed: int = 20201204  # the paper's publication date
    n_scenes: int = 6
    scene_size: int = 1536
    n_discovery_chips: int = 1000
    n_impact_patches: int = 2400
    discovery_epochs: int = 6
    impact_epochs: int = 30
    batch_size: int = 32
    threshold: float = 0.6
    version: str = "demo-2"


def train_demo_models(out_dir: str | Path, recipe: DemoRecipe | None = None, *, overwrite: bool = False) -> dict:
    """Synthesise chips, train both networks deterministically, write `out_dir/{discovery,impact}`."""
    import tensorflow as tf

    from ..synth import write_chip_set
    from .crossval import TrainConfig, run_training
    from .data import DataSpec
    from .loop import TrainSettings

    recipe = recipe or DemoRecipe()
    out = Path(out_dir)
    jobs = (
        ("discovery", recipe.n_discovery_chips, recipe.discovery_epochs, recipe.seed),
        ("impact", recipe.n_impact_patches, recipe.impact_epochs, recipe.seed + 1),
    )
    cards = {}
    with tempfile.TemporaryDirectory(prefix="minescan-demo-chips-") as tmp:
        for kind, n, epochs, seed in jobs:
            chips = Path(tmp) / kind
            write_chip_set(chips, n=n, seed=seed, kind=kind, scene_size=recipe.scene_size,
                           n_scenes=recipe.n_scenes)
            config = TrainConfig(
                kind=kind, data=DataSpec(data=str(chips)), out=str(out / kind),
                name=f"demo-{kind}", version=recipe.version, threshold=recipe.threshold, folds=0,
                overwrite=overwrite,
                settings=TrainSettings(epochs=epochs, batch_size=recipe.batch_size, seed=seed,
                                       deterministic=True),
            )
            card = run_training(config, tf.distribute.get_strategy())
            cards[kind] = card
    (out / "RECIPE.json").write_text(
        json.dumps({"source": "minescan synthetic scenes (not real imagery)",
                                  "command": "make demo-models", **asdict(recipe)}, indent=2) + "\n"
    )
    return cards
