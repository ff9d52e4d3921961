"""A spectral baseline: the best single threshold on one index, fitted on the training scenes.

What the U-Net has to beat to be worth its parameters. Candidate indices, from the input's
own bands: each band, the brightness (mean of all bands) and the normalised difference of
every pair of reflectance bands (bands never negative in the training pixels; a band that
is already an index, such as NDVI, is not differenced again) — for RGB the water and
vegetation contrasts of blue, green and red; the Landsat cube has MNDWI, NDVI and NDSI. The index,
threshold and side (mining above or below) with the highest pixel F1 on the training
pixels win; the fit is exact over the sampled pixels (every cut point is tried).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from ..errors import InputError
from ..training.loop import IGNORE
from .cube import normalized_difference
from .data import LabelledScene

#: labelled pixels drawn (uniformly) per scene for the fit
PIXELS_PER_SCENE = 50_000


@dataclass(frozen=True)
class SpectralBaseline:
    index: str  # "band:B4", "brightness" or "nd:B3,B4" ((B3 − B4) / (B3 + B4))
    threshold: float
    above: bool  # mining where index ≥ threshold (else ≤)
    f1_train: float

    def predict(self, x: np.ndarray, bands: Sequence[str]) -> np.ndarray:
        """(rows, cols) bool mining map of a (rows, cols, bands) array (False where NaN)."""
        values = index_values(x, bands, self.index)
        with np.errstate(invalid="ignore"):
            return values >= self.threshold if self.above else values <= self.threshold

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "threshold": self.threshold, "above": self.above,
                "f1_train": self.f1_train}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SpectralBaseline:
        return cls(str(raw["index"]), float(raw["threshold"]), bool(raw["above"]), float(raw["f1_train"]))


def index_names(bands: Sequence[str], reflectances: Sequence[str] | None = None) -> list[str]:
    """Every candidate index; normalised differences only between `reflectances` (all bands
    by default)."""
    pairs = combinations(bands if reflectances is None else reflectances, 2)
    return [f"band:{b}" for b in bands] + ["brightness"] + [f"nd:{a},{b}" for a, b in pairs]


def index_values(x: np.ndarray, bands: Sequence[str], name: str) -> np.ndarray:
    """The named index of a (..., bands) array, float32."""
    bands = list(bands)
    kind, _, spec = name.partition(":")
    try:
        if kind == "band":
            return x[..., bands.index(spec)].astype(np.float32, copy=False)
        if kind == "brightness":
            return x.mean(axis=-1, dtype=np.float32)
        if kind == "nd":
            a, b = (x[..., bands.index(s)] for s in spec.split(","))
            return normalized_difference(a, b)
    except ValueError:
        pass
    raise InputError(f"the baseline index {name!r} needs bands the input lacks ({bands})")


def _best_cut(values: np.ndarray, truth: np.ndarray) -> tuple[float, float, bool]:
    """(F1, threshold, above) of the best cut of `values` for predicting `truth`."""
    best = (0.0, float("nan"), True)
    positives = int(truth.sum())
    order = np.argsort(values, kind="stable")
    v, t = values[order], truth[order]
    for above in (True, False):
        vs, ts = (v[::-1], t[::-1]) if above else (v, t)
        tp = np.cumsum(ts)
        predicted = np.arange(1, vs.size + 1)
        last = np.r_[vs[1:] != vs[:-1], True]  # a cut between distinct values only
        f1 = np.where(last, 2 * tp / (predicted + positives), 0.0)
        i = int(np.argmax(f1))
        if f1[i] > best[0]:
            best = (float(f1[i]), float(vs[i]), above)
    return best


def baseline_sample(scene: LabelledScene, i: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pixels, mining) drawn from the `i`-th training scene for the fit: its labelled,
    observed pixels, at most PIXELS_PER_SCENE of them (seeded by `seed` and `i`)."""
    flat = scene.x.reshape(-1, scene.x.shape[-1])
    scored = np.flatnonzero((scene.labels.ravel() != IGNORE) & ~np.isnan(flat).any(axis=1))
    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, 13, i]))
    if scored.size > PIXELS_PER_SCENE:
        scored = np.sort(rng.choice(scored, PIXELS_PER_SCENE, replace=False))
    return flat[scored], scene.labels.ravel()[scored] == 1


def fit_baseline(scenes: Iterable[LabelledScene], bands: Sequence[str], seed: int = 0) -> SpectralBaseline:
    """The best single-index threshold on the scenes' labelled, observed pixels."""
    return fit_baseline_samples([baseline_sample(scene, i, seed) for i, scene in enumerate(scenes)], bands)


def fit_baseline_samples(samples: Sequence[tuple[np.ndarray, np.ndarray]], bands: Sequence[str]) -> SpectralBaseline:
    """`fit_baseline` on pixels `baseline_sample` drew (so a caller that reads the scenes for
    something else draws them in the same pass)."""
    x = np.concatenate([pixels for pixels, _ in samples])
    truth = np.concatenate([mining for _, mining in samples])
    if not truth.any():
        raise InputError("the training scenes hold no mining pixel: the baseline cannot be fitted")
    reflectances = [b for i, b in enumerate(bands) if np.nanmin(x[:, i]) >= 0]
    best: SpectralBaseline | None = None
    for name in index_names(bands, reflectances):
        values = index_values(x, bands, name)
        finite = np.isfinite(values)
        f1, threshold, above = _best_cut(values[finite], truth[finite])
        if best is None or f1 > best.f1_train:
            best = SpectralBaseline(name, threshold, above, round(f1, 4))
    assert best is not None
    return best
