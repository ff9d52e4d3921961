"""Classification metrics in the paper's terms (Tables 4–7), in plain numpy.

Conventions follow scikit-learn so that numbers can be compared with other work:
the confusion matrix has actual classes as rows and predicted classes as columns; for two
classes precision/recall/F1 are of the positive class (index 1, `mine`); for more classes
they are macro averages; ROC AUC is from the predicted probabilities (one-vs-rest macro
average for more than two classes), not from hard labels. A ratio with a zero denominator
is 0, as scikit-learn's `zero_division=0`.
"""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("accuracy", "f1", "precision", "recall", "roc_auc", "kappa")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, rows = actual class, columns = predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    flat = y_true * n_classes + y_pred
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def precision_recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 from a confusion matrix."""
    tp = np.diag(cm).astype(np.float64)
    precision = _ratio(tp, cm.sum(axis=0))
    recall = _ratio(tp, cm.sum(axis=1))
    f1 = _ratio(2 * tp, cm.sum(axis=0) + cm.sum(axis=1))
    return precision, recall, f1


def cohen_kappa(cm: np.ndarray) -> float:
    """Agreement beyond chance: (p_o − p_e) / (1 − p_e)."""
    n = cm.sum()
    if n == 0:
        return 0.0
    p_o = np.trace(cm) / n
    p_e = float(cm.sum(axis=0) @ cm.sum(axis=1)) / n**2
    return 0.0 if p_e == 1 else float((p_o - p_e) / (1 - p_e))


def binary_roc_auc(is_positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties ½.

    Computed from average ranks (Mann–Whitney U), which equals the trapezoidal area under
    the curve with tied scores; NaN when only one class is present.
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos = int(is_positive.sum())
    n_neg = is_positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    ranks = np.empty(score.size, dtype=np.float64)
    # Average rank of each run of equal scores.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], score.size]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Binary: AUC of p(class 1). More classes: macro average of one-vs-rest AUCs."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape[1] == 2:
        return binary_roc_auc(y_true == 1, proba[:, 1])
    aucs = [binary_roc_auc(y_true == c, proba[:, c]) for c in range(proba.shape[1])]
    return float(np.mean(aucs))


def predict_classes(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Argmax; for two classes with a threshold, class 1 iff p(class 1) ≥ threshold."""
    proba = np.asarray(proba)
    if threshold is not None and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return np.argmax(proba, axis=1).astype(np.int64)


def classification_metrics(
    y_true: np.ndarray,
    proba: np.ndarray,
    class_names: tuple[str, ...] | list[str],
    threshold: float | None = None,
) -> dict:
    """All of Tables 4–7 for one set of predictions, as plain JSON-able values."""
    y_true = np.asarray(y_true, dtype=np.int64)
    n_classes = len(class_names)
    y_pred = predict_classes(proba, threshold)
    cm = confusion_matrix(y_true, y_pred, n_classes)
    precision, recall, f1 = precision_recall_f1(cm)
    if n_classes == 2:
        p, r, f = precision[1], recall[1], f1[1]
    else:
        p, r, f = precision.mean(), recall.mean(), f1.mean()
    return {
        "n": int(y_true.size),
        "accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
        "f1": float(f),
        "precision": float(p),
        "recall": float(r),
        "roc_auc": roc_auc(y_true, proba),
        "kappa": cohen_kappa(cm),
        "confusion_matrix": cm.tolist(),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i])}
            for i, name in enumerate(class_names)
        },
        "threshold": threshold if n_classes == 2 else None,
    }


def summarize_folds(folds: list[dict]) -> dict:
    """Mean ± sample sd of each metric across folds, and the mean confusion matrix (Table 5)."""
    out: dict = {"n_folds": len(folds)}
    for name in METRIC_NAMES:
        values = np.array([f[name] for f in folds], dtype=np.float64)
        values = values[~np.isnan(values)]
        out[name] = {
            "mean": float(values.mean()) if values.size else float("nan"),
            "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        }
    out["confusion_matrix_mean"] = np.mean(
        [np.asarray(f["confusion_matrix"], dtype=np.float64) for f in folds], axis=0
    ).tolist()
    return out
