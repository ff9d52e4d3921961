"""`minescan series evaluate`: a series U-Net on a folder of image/mask pairs, next to its baseline.

Every `img_NNN.tif` is predicted whole with the seamless windows and compared pixel by
pixel with `mask_NNN.tif`: IoU, F1, precision and recall per scene and overall (counts
pooled over all scenes). The spectral baseline stored with the model (fitted on the model's
own training scenes) is scored on the same pixels, so the network's value is measured.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from ..training.loop import IGNORE
from .baseline import SpectralBaseline
from .data import LabelledScene, image_bands, image_pairs, read_image_scene
from .predict import load_series_model, predict_probability
from .scores import PixelCounts, count
from .windows import STEP, WINDOW

if TYPE_CHECKING:
    from ..models.card import Normalization

METRICS = ("iou", "f1", "precision", "recall")


def score_scene(model: Any, norm: Normalization, threshold: float, baseline: SpectralBaseline,
                scene: LabelledScene, bands: Sequence[str], *, window: int = WINDOW,
                step: int = STEP) -> tuple[PixelCounts, PixelCounts]:
    """(U-Net, baseline) pixel counts on one scene's labelled pixels, the scene predicted whole."""
    scored = scene.labels != IGNORE
    p = predict_probability(model, scene.x, norm, window=window, step=step)
    return (count(p >= threshold, scene.mining, scored),
            count(baseline.predict(scene.x, bands), scene.mining, scored))


def evaluate_images(model_path: str | os.PathLike[str], images_dir: str | os.PathLike[str], *,
                    window: int = WINDOW, step: int = STEP) -> dict[str, Any]:
    """Per-scene and overall pixel scores of the model and its baseline on `images_dir`."""
    import rasterio

    from ..models.card import verified_card

    card, _ = verified_card(model_path, kind="series")
    if "baseline" not in card.training:
        raise ModelError(f"{model_path} records no spectral baseline: retrain it with `minescan series train`")
    baseline = SpectralBaseline.from_json(card.training["baseline"])
    pairs = image_pairs(images_dir)
    with rasterio.open(pairs[0][1]) as src:
        loaded = load_series_model(model_path, image_bands(src))
    rows, totals = [], {"unet": PixelCounts(), "baseline": PixelCounts()}
    for name, image, mask in pairs:
        scene, _ = read_image_scene(name, image, mask, card.bands)
        unet, base = score_scene(loaded.model, card.normalization, card.threshold, baseline, scene,
                                 card.bands, window=window, step=step)
        totals["unet"] += unet
        totals["baseline"] += base
        rows.append({"scene": name, "mining_px": int(scene.mining.sum()),
                     "unet": unet.scores(), "baseline": base.scores()})
    return {"model": card.ref, "threshold": card.threshold, "images": str(images_dir),
            "baseline": baseline.as_json(), "scenes": rows,
            "overall": {k: c.scores() for k, c in totals.items()}}


def scores_table(result: dict[str, Any]) -> str:
    """A Markdown table: one row per scene and an overall row, U-Net then baseline."""
    head = ["scene", "mining px"] + [f"U-Net {m}" for m in METRICS] + [f"baseline {m}" for m in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(name: str, mining: str, unet: dict[str, Any], base: dict[str, Any]) -> str:
        cells = [name, mining] + [f"{unet[m]:.3f}" for m in METRICS] + [f"{base[m]:.3f}" for m in METRICS]
        return "| " + " | ".join(cells) + " |"

    for r in result["scenes"]:
        lines.append(row(r["scene"], str(r["mining_px"]), r["unet"], r["baseline"]))
    overall = result["overall"]
    lines.append(row("**overall**", str(overall["unet"]["tp"] + overall["unet"]["fn"]),
                     overall["unet"], overall["baseline"]))
    return "\n".join(lines) + "\n"
