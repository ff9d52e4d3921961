"""Training the U-Net through the one training loop; the model card; evaluation next to a baseline."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from minescan.errors import InputError, ModelError
from minescan.models.card import load_model_dir, read_model_card
from minescan.series.baseline import SpectralBaseline, _best_cut, fit_baseline, index_values
from minescan.series.data import LabelledScene, crop, image_scenes, sample_tiles
from minescan.series.scores import PixelCounts, count
from minescan.training.loop import IGNORE, Segmentation
from tests.helpers import run_cli, write_scene

#: a seamless window small enough for 48-px test scenes (the method's 512/256 is pinned elsewhere)
WINDOWS = ["--window", "64", "--step", "32"]
TINY = ["--width", "2", "--tile", "32", "--tiles-per-scene", "2", "--epochs", "1", "--batch-size", "2",
        "--max-steps", "2", *WINDOWS]


def _pairs(folder, n=3, size=48, seed=0):
    """Image/mask pairs: a dark pond (the 'tailings') on brighter ground, 3 bands named B2–B4."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = rng.integers(1500, 2500, (3, size, size)).astype(np.uint16)
        mask = np.zeros((1, size, size), np.uint8)
        r, c = rng.integers(5, size - 20, 2)
        mask[0, r : r + 12, c : c + 15] = 1
        img[:, mask[0] == 1] = rng.integers(300, 600, (3, int(mask.sum()))).astype(np.uint16)
        write_scene(folder / f"img_{i:03d}.tif", img, nodata=None, descriptions=("B2", "B3", "B4"))
        write_scene(folder / f"mask_{i:03d}.tif", mask, nodata=None)
    return folder


def test_segmentation_loss_scores_only_labelled_pixels():
    import tensorflow as tf

    objective = Segmentation(lambda n: None)
    targets = tf.constant([[[1.0, IGNORE], [0.0, IGNORE]], [[IGNORE, IGNORE], [IGNORE, IGNORE]]])
    good = tf.constant([[[0.99, 0.0], [0.01, 1.0]], [[0.3, 0.3], [0.3, 0.3]]])[..., None]
    bad = tf.constant([[[0.01, 0.0], [0.99, 1.0]], [[0.3, 0.3], [0.3, 0.3]]])[..., None]
    loss_good, correct = objective.per_example(targets, good)
    loss_bad, _ = objective.per_example(targets, bad)
    assert float(loss_good[0]) < 0.02 < 4 < float(loss_bad[0])
    assert float(loss_good[1]) == 0.0  # a tile with nothing labelled teaches nothing
    np.testing.assert_allclose(np.asarray(correct), [1.0, 0.0])


def test_tiles_are_deterministic_pad_with_no_data_and_favour_mining():
    labels = np.zeros((40, 40), np.uint8)
    labels[30:34, 30:34] = 1
    scene = LabelledScene("s", np.random.default_rng(0).random((40, 40, 2)).astype(np.float32), labels)
    a = sample_tiles([scene], per_scene=20, tile=16, positive_share=1.0, seed=5)
    b = sample_tiles([scene], per_scene=20, tile=16, positive_share=1.0, seed=5)
    np.testing.assert_array_equal(a.x, b.x)
    assert all((y == 1).any() for y in a.y)
    x, y = crop(scene, -4, 30, 16)
    assert np.isnan(x[:4]).all() and (y[:4] == IGNORE).all() and (y[:, 10:] == IGNORE).all()
    np.testing.assert_array_equal(x[4:, :10], scene.x[:12, 30:])


def test_the_best_cut_is_the_brute_force_best():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 20, 300).astype(np.float32)
    truth = rng.random(300) < values / 25
    f1, threshold, above = _best_cut(values, truth)

    def f1_at(t, up):
        pred = values >= t if up else values <= t
        return 2 * (pred & truth).sum() / (pred.sum() + truth.sum())

    brute = max((f1_at(t, up), t, up) for t in np.unique(values) for up in (True, False))
    assert f1 == pytest.approx(brute[0]) and (threshold, above) == brute[1:]


def test_baseline_finds_a_separating_index_and_reapplies_it():
    x = np.random.default_rng(0).uniform(1000, 2000, (30, 30, 3)).astype(np.float32)
    labels = np.zeros((30, 30), np.uint8)
    labels[5:15, 5:15] = 1
    x[labels == 1, 2] += 3000  # mining is bright in the third band
    baseline = fit_baseline([LabelledScene("s", x, labels)], ("B2", "B3", "B4"))
    assert baseline.f1_train == 1.0 and baseline.above
    np.testing.assert_array_equal(baseline.predict(x, ("B2", "B3", "B4")), labels == 1)
    assert SpectralBaseline.from_json(baseline.as_json()) == baseline
    np.testing.assert_allclose(index_values(x, ("a", "b", "c"), "nd:a,c"), (x[..., 0] - x[..., 2]) / (x[..., 0] + x[..., 2]))


def test_pixel_scores_by_hand():
    predicted = np.array([1, 1, 0, 0, 1], bool)
    truth = np.array([1, 0, 1, 0, 1], bool)
    counts = count(predicted, truth) + PixelCounts(tn=5)
    assert counts == PixelCounts(2, 1, 1, 6)
    s = counts.scores()
    assert (s["iou"], s["f1"], s["precision"], s["recall"]) == (0.5, round(4 / 6, 4), round(2 / 3, 4), round(2 / 3, 4))
    assert count(predicted, truth, np.array([1, 1, 0, 0, 0], bool)) == PixelCounts(1, 1, 0, 0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(images, model) trained once through the CLI."""
    root = tmp_path_factory.mktemp("series-train")
    images = _pairs(root / "images", n=4)
    assert run_cli(["series", "train", "--images", images, "--out", root / "model", *TINY]) == 0
    return images, root / "model"


def test_the_model_directory_carries_bands_normalisation_baseline_and_width(trained):
    _, model = trained
    card = read_model_card(model)
    assert card.kind == "series" and card.bands == ["B2", "B3", "B4"] and card.input_size == 32
    assert card.class_names == ["not_mining", "mining"] and card.threshold == 0.5
    assert len(card.normalization.mean) == 3 and card.normalization.mean[0] > 300
    assert card.training["architecture"]["width"] == 2 and "baseline" in card.training
    loaded = load_model_dir(model, kind="series")
    assert loaded.model.output_shape[-1] == 1
    assert loaded.model.count_params() == card.training["architecture"]["parameters"]
    with pytest.raises(ModelError, match="series model where a discovery model"):
        load_model_dir(model, kind="discovery")


def test_evaluate_reports_every_scene_and_the_pooled_pixels(trained, tmp_path):
    images, model = trained
    out = tmp_path / "scores.json"
    assert run_cli(["series", "evaluate", "--model", model, "--images", images, "--json", out, *WINDOWS]) == 0
    result = json.loads(out.read_text())
    assert [r["scene"] for r in result["scenes"]] == [f"img_{i:03d}" for i in range(4)]
    for r in result["scenes"]:
        for who in ("unet", "baseline"):
            assert set(r[who]) >= {"iou", "f1", "precision", "recall"}
    total = sum(r["unet"]["tp"] + r["unet"]["fn"] for r in result["scenes"])
    assert result["overall"]["unet"]["tp"] + result["overall"]["unet"]["fn"] == total == 4 * 12 * 15
    assert result["baseline"] == read_model_card(model).training["baseline"]


def test_a_series_model_on_inputs_it_cannot_read_is_refused(trained, tmp_path):
    images, model = trained
    two_bands = tmp_path / "two"
    two_bands.mkdir()
    write_scene(two_bands / "img_000.tif", np.ones((2, 8, 8), np.uint16), nodata=None, descriptions=("B2", "B3"))
    write_scene(two_bands / "mask_000.tif", np.zeros((1, 8, 8), np.uint8), nodata=None)
    assert run_cli(["series", "evaluate", "--model", model, "--images", two_bands]) == 3
    altered = tmp_path / "altered"
    shutil.copytree(model, altered)
    (altered / "model.keras").write_bytes(b"altered")
    assert run_cli(["series", "evaluate", "--model", altered, "--images", images]) == 4


@pytest.mark.slow
def test_scene_cross_validation_holds_each_scene_out_once(tmp_path):
    images = _pairs(tmp_path / "images", n=4)
    model = tmp_path / "model"
    assert run_cli(["series", "train", "--images", images, "--out", model, "--folds", "2", *TINY]) == 0
    cv = json.loads((model / "report" / "cv.json").read_text())
    assert sorted(r["scene"] for r in cv["scenes"]) == [f"img_{i:03d}" for i in range(4)]
    assert {r["fold"] for r in cv["scenes"]} == {0, 1} and set(cv["overall"]) == {"unet", "baseline"}
    assert read_model_card(model).metrics["cv"] == cv["overall"]
    assert "Cross-validation" in (model / "report" / "README.md").read_text()


def test_image_folder_errors_are_clear(tmp_path):
    folder = _pairs(tmp_path / "a", n=1)
    (folder / "img_007.tif").write_bytes((folder / "img_000.tif").read_bytes())
    with pytest.raises(InputError, match="no mask_007.tif"):
        image_scenes(folder)
    write_scene(tmp_path / "b" / "img_000.tif" if (tmp_path / "b").mkdir() is None else None,
                np.ones((3, 8, 8), np.uint16), nodata=None)
    write_scene(tmp_path / "b" / "mask_000.tif", np.full((1, 8, 8), 7, np.uint8), nodata=None)
    with pytest.raises(InputError, match="label values"):
        image_scenes(tmp_path / "b")
    assert run_cli(["series", "train", "--images", tmp_path / "empty-does-not-exist", "--out", tmp_path / "m"]) == 2
