"""`minescan models`: train the demo models, inspect and verify model directories."""

from __future__ import annotations

import json

import click


@click.group()
def models():
    """Build, inspect and verify model directories."""


@models.command("train-demo")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory to hold discovery/ and impact/.")
@click.option("--seed", type=int, default=None, help="Recipe seed (default: the bundled models').")
@click.option("--overwrite", is_flag=True, help="Replace existing model directories.")
def train_demo(out, seed, overwrite):
    """Retrain the bundled demo models: synthetic chips, then the same training as `minescan train`.

    Example:

    \b
      minescan models train-demo --out my-demo-models
    """
    from ..training.demo_models import DemoRecipe, train_demo_models

    recipe = DemoRecipe() if seed is None else DemoRecipe(seed=seed)
    cards = train_demo_models(out, recipe, overwrite=overwrite)
    for kind, card in cards.items():
        click.echo(f"{kind}: {card.ref} → {out}/{kind}")


@models.command("info")
@click.argument("model_dir", type=click.Path())
def info(model_dir):
    """Print a model directory's card after verifying its weights hash.

    Example:

    \b
      minescan models info gs://bucket/models/discovery-2024
    """
    from ..models.card import read_model_card

    card = read_model_card(model_dir)
    click.echo(json.dumps(card.model_dump(mode="json"), indent=2))
