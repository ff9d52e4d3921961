"""The U-Net code on the real Sentinel-2 RGB tailings scenes in ../shared (skipped without it).

The scenes are read in place, never copied into the repository (no licence from the labeller).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from minescan.series.baseline import fit_baseline
from minescan.series.data import image_scenes
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def tailings(shared_dir):
    return shared_dir / "data" / "tailings_seg_dev"


def test_the_twelve_real_scenes_read_as_rgb_with_their_masks(tailings):
    scenes, bands = image_scenes(tailings)
    assert bands == ("B2", "B3", "B4") and len(scenes) == 12
    for scene in scenes:
        assert scene.x.shape == (448, 448, 3) and scene.x.dtype == np.float32
        assert set(np.unique(scene.labels)) == {0, 1}  # no no-data in these composites
        assert 200 < np.median(scene.x) < 3000  # reflectance × 10000
    share = np.mean([s.mining.mean() for s in scenes])
    assert 0.05 < share < 0.2


def test_the_spectral_baseline_fits_on_real_scenes(tailings):
    scenes, bands = image_scenes(tailings)
    baseline = fit_baseline(scenes[:6], bands)
    assert 0 < baseline.f1_train < 1 and np.isfinite(baseline.threshold)
    assert baseline.index.split(":")[0] in ("band", "brightness", "nd")


@pytest.mark.slow
def test_train_and_evaluate_on_real_scenes_through_the_cli(tailings, tmp_path):
    model = tmp_path / "model"
    assert run_cli(["series", "train", "--images", tailings, "--out", model, "--width", "2", "--tile", "64",
                    "--tiles-per-scene", "1", "--epochs", "1", "--max-steps", "2"]) == 0
    out = tmp_path / "scores.json"
    assert run_cli(["series", "evaluate", "--model", model, "--images", tailings, "--json", out]) == 0
    result = json.loads(out.read_text())
    assert len(result["scenes"]) == 12
    assert result["overall"]["unet"]["tp"] + result["overall"]["unet"]["fn"] == sum(r["mining_px"] for r in result["scenes"])
