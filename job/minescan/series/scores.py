"""Pixel agreement between a binary map and its truth: counts that add up, and their scores.

Counts (not ratios) are what is summed across scenes or years, so an overall figure weighs
every pixel once (micro average). IoU = TP / (TP + FP + FN); F1 = 2 TP / (2 TP + FP + FN); a
ratio with a zero denominator is 0, as scikit-learn's `zero_division=0`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class PixelCounts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: PixelCounts) -> PixelCounts:
        return PixelCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    def scores(self) -> dict[str, float | int]:
        def ratio(num: int, den: int) -> float:
            return round(num / den, 4) if den else 0.0

        return {
            "iou": ratio(self.tp, self.tp + self.fp + self.fn),
            "f1": ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn),
            "precision": ratio(self.tp, self.tp + self.fp),
            "recall": ratio(self.tp, self.tp + self.fn),
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
        }


def count(predicted: np.ndarray, truth: np.ndarray, scored: np.ndarray | None = None) -> PixelCounts:
    """Confusion counts of two boolean maps over the `scored` pixels (all by default)."""
    predicted = np.asarray(predicted, bool)
    truth = np.asarray(truth, bool)
    if scored is not None:
        predicted, truth = predicted[scored], truth[scored]
    tp = int(np.count_nonzero(predicted & truth))
    fp = int(np.count_nonzero(predicted & ~truth))
    fn = int(np.count_nonzero(~predicted & truth))
    return PixelCounts(tp, fp, fn, int(truth.size - tp - fp - fn))
