"""The numpy metrics equal scikit-learn's on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
from minescan.training.metrics import (
    binary_roc_auc,
    classification_metrics,
    cohen_kappa,
    confusion_matrix,
    summarize_folds,
)
from sklearn import metrics as skm


def _random_predictions(rng, n, n_classes, skill):
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), y] += skill
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [None, 0.6])
def test_binary_metrics_equal_sklearn(seed, threshold):
    rng = np.random.default_rng(seed)
    y, proba = _random_predictions(rng, 200, 2, skill=1.5)
    got = classification_metrics(y, proba, ("not_mine", "mine"), threshold=threshold)
    pred = (proba[:, 1] >= threshold).astype(int) if threshold else proba.argmax(1)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert got["kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert got["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()


@pytest.mark.parametrize("seed", range(5))
def test_three_class_metrics_equal_sklearn_macro_and_ovr(seed):
    rng = np.random.default_rng(seed)
    y, proba = _random_predictions(rng, 150, 3, skill=1.0)
    got = classification_metrics(y, proba, ("high", "low", "no_ore"))
    pred = proba.argmax(1)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(
        skm.precision_score(y, pred, average="macro", zero_division=0)
    )
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert got["kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert got["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1, 2]).tolist()


def test_auc_with_tied_scores_equals_sklearn():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    assert binary_roc_auc(y == 1, score) == pytest.approx(skm.roc_auc_score(y, score))


def test_absent_predicted_class_gives_zero_not_nan():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1]] * 4)
    got = classification_metrics(y, proba, ("not_mine", "mine"))
    assert got["precision"] == 0.0 and got["f1"] == 0.0
    assert got["kappa"] == pytest.approx(skm.cohen_kappa_score(y, [0, 0, 0, 0]))


def test_kappa_of_perfect_agreement_is_one():
    assert cohen_kappa(confusion_matrix([0, 1, 2, 1], [0, 1, 2, 1], 3)) == pytest.approx(1.0)


def test_fold_summary_is_mean_and_sample_sd_with_mean_confusion():
    folds = [
        {"accuracy": 0.9, "f1": 0.8, "precision": 1.0, "recall": 0.5, "roc_auc": 0.7, "kappa": 0.1,
         "confusion_matrix": [[2, 0], [1, 3]]},
        {"accuracy": 1.0, "f1": 0.6, "precision": 1.0, "recall": 0.7, "roc_auc": 0.9, "kappa": 0.3,
         "confusion_matrix": [[4, 2], [1, 1]]},
    ]
    summary = summarize_folds(folds)
    assert summary["accuracy"]["mean"] == pytest.approx(0.95)
    assert summary["accuracy"]["sd"] == pytest.approx(np.std([0.9, 1.0], ddof=1))
    assert summary["confusion_matrix_mean"] == [[3.0, 1.0], [1.0, 2.0]]
