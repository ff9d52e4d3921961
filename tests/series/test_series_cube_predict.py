"""A synthetic Landsat series end to end through the CLI: cube, train, predict, map one region;
and the inputs that must be refused (exit 3/4) with nothing written."""

from __future__ import annotations

import numpy as np
import pytest

from minescan.models.card import read_model_card
from minescan.series.cube import open_feature_cube
from minescan.series.cube_io import open_class_cube
from minescan.series.filters import MINING, NODATA, NOT_MINING
from tests.helpers import run_cli

TINY = ["--width", "2", "--tile", "32", "--tiles-per-scene", "1", "--epochs", "1", "--batch-size", "4",
        "--max-steps", "2", "--window", "64", "--step", "32"]


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """(root, cube, model): a 64-px, 20-year synthetic region, its cube and a tiny U-Net."""
    root = tmp_path_factory.mktemp("series-region")
    assert run_cli(["synth", "landsat", root / "r", "--size", "64", "--seed", "5", "--years", "2000-2019"]) == 0
    assert run_cli(["series", "cube", root / "r" / "mosaics", "--out", root / "cube.zarr"]) == 0
    assert run_cli(["series", "train", "--cube", root / "cube.zarr", "--labels", root / "r" / "truth",
                    "--out", root / "model", *TINY]) == 0
    return root, root / "cube.zarr", root / "model"


def test_a_cube_trained_model_carries_the_six_features(region):
    _, _, model = region
    card = read_model_card(model)
    assert card.kind == "series" and card.bands == ["swir1", "nir", "red", "mndwi", "ndvi", "ndsi"]
    assert card.training["data"]["synthetic"] == "minescan.synth.landsat"
    assert card.training["baseline"]["index"]


def test_predict_writes_a_class_cube_the_filters_read(region, tmp_path):
    root, cube, model = region
    out = tmp_path / "classes.zarr"
    assert run_cli(["series", "predict", cube, "--model", model, "--out", out, "--window", "64", "--step", "32",
                    "--years", "2003-2007"]) == 0
    classes = open_class_cube(out)
    assert classes.grid.years == (2003, 2004, 2005, 2006, 2007)
    features = open_feature_cube(cube)
    assert classes.grid.transform == features.grid.transform and classes.grid.height == 64
    values = classes.read()
    assert set(np.unique(values)) <= {NOT_MINING, MINING, NODATA}
    for i, year in enumerate(classes.grid.years):
        np.testing.assert_array_equal(values[i] == NODATA, np.isnan(features.year_features(year)).any(-1))
    assert classes.attrs["synthetic"] == "minescan.synth.landsat" and classes.attrs["window"] == 64
    assert run_cli(["series", "filter", out, "--out", tmp_path / "filtered.zarr"]) == 0
    assert NODATA not in open_class_cube(tmp_path / "filtered.zarr").read()[-1]


def test_a_model_whose_features_the_cube_lacks_is_refused_before_anything_is_written(region, tmp_path):
    from tests.series.test_series_train import TINY as IMAGE_TINY
    from tests.series.test_series_train import _pairs

    _, cube, _ = region
    rgb = tmp_path / "rgb-model"
    assert run_cli(["series", "train", "--images", _pairs(tmp_path / "images", n=2), "--out", rgb, *IMAGE_TINY]) == 0
    out = tmp_path / "classes.zarr"
    assert run_cli(["series", "predict", cube, "--model", rgb, "--out", out]) == 3
    assert not out.exists() and not list(tmp_path.glob(".classes*"))


def test_a_model_of_another_kind_or_altered_is_refused(region, tiny_models, tmp_path):
    import shutil

    _, cube, model = region
    out = tmp_path / "classes.zarr"
    assert run_cli(["series", "predict", cube, "--model", tiny_models / "discovery", "--out", out]) == 4
    altered = tmp_path / "altered"
    shutil.copytree(model, altered)
    with (altered / "model.keras").open("ab") as handle:
        handle.write(b"\0")
    assert run_cli(["series", "predict", cube, "--model", altered, "--out", out]) == 4
    assert run_cli(["series", "predict", cube, "--model", model, "--out", out, "--years", "1990"]) == 3
    assert not out.exists()


def test_map_commits_one_region_per_index_and_skips_it_when_retried(region, root):
    from minescan import storage
    from minescan.batch.commit import read_committed

    local, cube, model = region
    cube_uri = storage.join(root, "cubes", "tapajos.zarr")
    storage.put_dir(cube, cube_uri)
    regions = storage.join(root, "regions.txt")
    storage.write_text(regions, f"# one feature cube per line\n{storage.join(root, 'cubes', 'missing.zarr')}\n{cube_uri}\n")
    run = storage.join(root, "run")
    args = ["series", "map", "--regions", regions, "--model", model, "--run", run, "--window", "64", "--step", "32"]
    assert run_cli([*args, "--index", "1"]) == 0
    committed = read_committed(storage.join(run, "regions", "tapajos"))
    assert committed is not None and committed.record["years"] == [2000, 2019]
    assert "classes.zarr/zarr.json" in committed.files
    assert run_cli([*args, "--index", "1"]) == 0  # already committed: nothing redone
    assert run_cli([*args, "--index", "2"]) == 3  # outside the list
    assert run_cli([*args, "--index", "0"]) == 3  # a cube that does not exist
