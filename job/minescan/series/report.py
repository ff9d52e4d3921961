"""The series model's report: the scene cross-validation as JSON and a Markdown table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models.card import ModelCard
from ..training.report import write_json
from .evaluate import scores_table


def write_series_report(directory: Path, card: ModelCard, cv: dict[str, Any] | None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"# {card.ref}", "", f"U-Net width {card.training['architecture']['width']} "
             f"({card.training['architecture']['parameters']:,} parameters), inputs "
             f"{', '.join(card.bands)}, tiles {card.input_size} px, threshold {card.threshold}.", ""]
    data = card.training["data"]
    if data.get("synthetic"):
        lines += ["**Trained on SYNTHETIC data** (`minescan synth landsat`).", ""]
    baseline = card.training["baseline"]
    lines += [f"Baseline: {baseline['index']} {'≥' if baseline['above'] else '≤'} "
              f"{baseline['threshold']:.4g} (training F1 {baseline['f1_train']}).", ""]
    if cv is not None:
        write_json(directory / "cv.json", cv)
        lines += [f"## Cross-validation ({cv['protocol']}, held-out scenes)", "", scores_table(cv)]
    (directory / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
