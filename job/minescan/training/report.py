"""The training report in the paper's terms: JSON, Markdown tables, per-fold curve plots.

    report/cv.json                 every fold's metrics and curves, and the summaries
    report/cv.md                   Table 4/6-style mean ± sd, Table 5/7-style mean confusion
    report/curves/<cv>_fold<k>.png accuracy and loss per epoch, training and validation
    report/curves/<cv>_all.png     validation accuracy of all folds (Figures 7–8)
    report/curves/final.png        the final model's training curves
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..models.card import ModelCard
from .metrics import METRIC_NAMES

LABELS = {
    "accuracy": "accuracy", "f1": "F1 score", "precision": "precision", "recall": "recall",
    "roc_auc": "ROC AUC", "kappa": "Cohen's kappa",
}


def json_safe(value: Any) -> Any:
    """NaN/inf → None, recursively, so the JSON is standard (no bare NaN tokens)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(json_safe(payload), indent=2, allow_nan=False) + "\n")


def write_report(
    out: Path, *, card: ModelCard, cv: dict[str, Any], final_history: dict[str, list[float]]
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "cv.json", {
        "model": card.ref, "kind": card.kind, "class_names": card.class_names,
        "threshold": card.threshold, "data": card.training.get("data"), "cv": cv,
        "final_history": final_history,
    })
    (out / "cv.md").write_text(markdown_report(card, cv))
    curves = out / "curves"
    curves.mkdir(exist_ok=True)
    for scheme, result in cv.items():
        for fold in result.get("folds", []):
            plot_curves(curves / f"{scheme}_fold{fold['fold']}.png", fold["history"],
                        f"{card.kind} — {scheme} CV, fold {fold['fold'] + 1}")
        if result.get("folds"):
            plot_all_folds(curves / f"{scheme}_all.png", result["folds"],
                           f"{card.kind} — {scheme} CV, validation accuracy per fold")
    plot_curves(curves / "final.png", final_history, f"{card.kind} — final model (all chips)")


def _pm(stat: dict[str, float]) -> str:
    mean, sd = stat["mean"], stat["sd"]
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.4f} ± {sd:.4f}"


def markdown_report(card: ModelCard, cv: dict[str, Any]) -> str:
    """Tables 4–7 of the paper, one column per cross-validation scheme."""
    data = card.training.get("data", {})
    lines = [
        f"# {card.kind} model {card.ref}",
        "",
        f"Chips: {data.get('n_chips')} {data.get('counts')}, {data.get('chip_size')} px, "
        f"bands {', '.join(card.bands)}. Source: {data.get('source', {}).get('type')}.",
        "",
    ]
    if card.threshold is not None:
        lines += [f"Discovery predictions count a chip as `mine` when p(mine) ≥ {card.threshold}.", ""]
    done = {s: r for s, r in cv.items() if "summary" in r}
    for scheme, result in cv.items():
        if "skipped" in result:
            lines += [f"*{scheme} cross-validation skipped: {result['skipped']}.*", ""]
    if not done:
        return "\n".join(lines + ["No cross-validation was run.", ""])
    k = next(iter(done.values()))["summary"]["n_folds"]
    header = "| metric | " + " | ".join(f"{s} {k}-fold (mean ± sd)" for s in done) + " |"
    lines += [f"## Validation metrics ({k}-fold)", "", header,
              "|---" * (len(done) + 1) + "|"]
    for name in METRIC_NAMES:
        lines.append(f"| {LABELS[name]} | " + " | ".join(_pm(r["summary"][name]) for r in done.values()) + " |")
    for scheme, result in done.items():
        lines += ["", f"## Mean confusion matrix, {scheme} split (rows actual, columns predicted)", ""]
        if scheme == "spatial":
            lines += [f"{result['n_groups']} spatial groups (chip centres within "
                      f"{result['group_distance_m']:.0f} m share a fold).", ""]
        names = card.class_names
        lines.append("| actual \\ predicted | " + " | ".join(names) + " |")
        lines.append("|---" * (len(names) + 1) + "|")
        for name, row in zip(names, result["summary"]["confusion_matrix_mean"]):
            lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(path: Path, history: dict[str, list[float]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    try:
        for key, ax, label in (("accuracy", acc_ax, "accuracy"), ("loss", loss_ax, "loss")):
            epochs = range(1, len(history[key]) + 1)
            ax.plot(epochs, history[key], label="training")
            if history.get(f"val_{key}"):
                ax.plot(range(1, len(history[f"val_{key}"]) + 1), history[f"val_{key}"], label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
    finally:
        plt.close(fig)


def plot_all_folds(path: Path, folds: list[dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    try:
        for fold in folds:
            values = fold["history"].get("val_accuracy") or []
            ax.plot(range(1, len(values) + 1), values, label=f"fold {fold['fold'] + 1}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
    finally:
        plt.close(fig)
