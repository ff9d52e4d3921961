"""Scanning a scene: georeferencing, seamless tiles, nodata, outputs, and every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from minescan.errors import EXIT_BAD_INPUT, EXIT_BAD_MODEL, EXIT_CONFLICT
from minescan.models.bundled import load_models
from minescan.scan import geometry
from minescan.scan.config import ScanConfig
from minescan.scan.scanner import scan_scene

from tests.helpers import random_scene, run_cli, write_scene


@pytest.fixture(scope="module")
def models(tiny_models):
    return load_models(str(tiny_models / "discovery"), str(tiny_models / "impact"))


def _cli(tiny_models, *args):
    argv = ["scan", *map(str, args), "--discovery-model", str(tiny_models / "discovery"),
            "--impact-model", str(tiny_models / "impact"), "--keep-no-ore"]
    return run_cli(argv)


def test_detections_sit_on_the_cell_centre_pixel_in_lon_lat(tmp_path, models):
    path = write_scene(tmp_path / "s.tif", random_scene(np.random.default_rng(1), 300, 340))
    result = scan_scene(str(path), *models, ScanConfig(drop_no_ore=False))
    det = result.detections
    assert result.p_mine.shape == (geometry.n_cells(300), geometry.n_cells(340))
    assert len(det) == result.p_mine.size  # threshold 0: every cell is a candidate
    np.testing.assert_array_equal(det["pixel_row"], 27 * det["cell_row"] + 100)
    np.testing.assert_array_equal(det["pixel_col"], 27 * det["cell_col"] + 100)
    t = result.scene.transform
    lon = t.a * (det["pixel_col"].to_numpy() + 0.5) + t.c  # north-up: b = d = 0
    lat = t.e * (det["pixel_row"].to_numpy() + 0.5) + t.f
    np.testing.assert_allclose(det["lon"], lon, rtol=0, atol=1e-12)
    np.testing.assert_allclose(det["lat"], lat, rtol=0, atol=1e-12)
    np.testing.assert_allclose(det["p_high"] + det["p_low"] + det["p_no_ore"], 1, atol=1e-5)


def test_projected_scene_is_placed_in_epsg4326(tmp_path, models):
    from affine import Affine
    from pyproj import Transformer

    transform = Affine(10, 0, 600_000, 0, -10, 7_780_000)
    path = write_scene(tmp_path / "utm.tif", random_scene(np.random.default_rng(2), 240, 240),
                       crs="EPSG:32723", transform=transform)
    det = scan_scene(str(path), *models, ScanConfig(drop_no_ore=False)).detections
    x = 600_000 + 10 * (det["pixel_col"].to_numpy() + 0.5)
    y = 7_780_000 - 10 * (det["pixel_row"].to_numpy() + 0.5)
    lon, lat = Transformer.from_crs(32723, 4326, always_xy=True).transform(x, y)
    np.testing.assert_allclose(det["lon"], lon, atol=1e-9)
    np.testing.assert_allclose(det["lat"], lat, atol=1e-9)
    assert -46 < det["lon"].mean() < -44 and -21 < det["lat"].mean() < -19


def test_nodata_pixels_never_produce_detections(tmp_path, models):
    data = random_scene(np.random.default_rng(4), 400, 400)
    data[:, :, 250:] = 0  # a nodata strip on the right
    data[:, 30:33, 20:23] = 0  # a small hole
    path = write_scene(tmp_path / "nd.tif", data)
    result = scan_scene(str(path), *models, ScanConfig(drop_no_ore=False))
    det = result.detections
    assert len(det) > 0
    for row, col in zip(det["pixel_row"], det["pixel_col"]):
        assert (data[:, row - 10 : row + 11, col - 10 : col + 11] != 0).all()
    assert np.isnan(result.p_mine[:, -1]).all()
    assert result.counts["valid_cells"] == len(det)


def test_scan_writes_a_complete_shard_readable_by_real_readers(tmp_path, tiny_models):
    import geopandas as gpd
    import pyogrio
    import xarray as xr

    path = write_scene(tmp_path / "s.tif", random_scene(np.random.default_rng(5), 260, 300))
    out = tmp_path / "out"
    assert _cli(tiny_models, path, "--out", out) == 0
    success = json.loads((out / "_SUCCESS.json").read_text())
    assert success["counts"]["cells"] == geometry.n_cells(260) * geometry.n_cells(300)
    assert set(success["files"]) >= {"detections.parquet", "detections.csv", "detections.kml"}
    ds = xr.open_zarr(out / "probability.zarr")
    assert ds["p_mine"].shape == (geometry.n_cells(260), geometry.n_cells(300))
    gdf = gpd.read_parquet(out / "detections.parquet")
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == success["counts"]["cells"]
    np.testing.assert_allclose(gdf.geometry.x, gdf["lon"])
    # the zarr's cell-centre coordinates are the detections' lon/lat
    row, col = int(gdf["cell_row"].iloc[-1]), int(gdf["cell_col"].iloc[-1])
    assert ds["x"].values[col] == pytest.approx(gdf["lon"].iloc[-1], abs=1e-12)
    assert ds["y"].values[row] == pytest.approx(gdf["lat"].iloc[-1], abs=1e-12)
    layers = [name for name, _ in pyogrio.list_layers(out / "detections.kml")]
    placemarks = sum(len(pyogrio.read_dataframe(out / "detections.kml", layer=name)) for name in layers)
    assert placemarks == len(gdf)
    for column in ("scene_id", "cell_row", "cell_col", "pixel_row", "pixel_col", "lon", "lat", "p_mine",
                   "impact_class", "p_high", "p_low", "p_no_ore", "model_version"):
        assert column in gdf.columns


def test_a_committed_shard_is_not_overwritten_without_overwrite(tmp_path, tiny_models):
    path = write_scene(tmp_path / "s.tif", random_scene(np.random.default_rng(6), 210, 210))
    out = tmp_path / "out"
    assert _cli(tiny_models, path, "--out", out) == 0
    before = (out / "_SUCCESS.json").read_bytes()
    assert _cli(tiny_models, path, "--out", out) == EXIT_CONFLICT
    assert (out / "_SUCCESS.json").read_bytes() == before
    assert _cli(tiny_models, path, "--out", out, "--overwrite") == 0


def _bad_scenes(tmp_path):
    rng = np.random.default_rng(7)
    (tmp_path / "text.tif").write_text("not a raster\n")
    yield "not a raster", tmp_path / "text.tif", "not a readable raster"
    yield "missing", tmp_path / "nope.tif", "does not exist"
    yield "smaller than a chip", write_scene(tmp_path / "small.tif", random_scene(rng, 150, 400)), "smaller than one 201"
    yield "wrong band count", write_scene(tmp_path / "b4.tif", random_scene(rng, 220, 220, bands=4)), "has 4 bands but the model expects 12"
    yield "no CRS", write_scene(tmp_path / "nocrs.tif", random_scene(rng, 220, 220), crs=None), "has no CRS"
    yield "all nodata", write_scene(tmp_path / "empty.tif", np.zeros((12, 230, 230), "uint16")), "no valid pixel"
    named = [f"B{i}" for i in range(1, 12)] + ["B8A"]
    yield "bands named without B12", write_scene(tmp_path / "named.tif", random_scene(rng, 220, 220), descriptions=named), "missing ['B10', 'B12']"[:9]


@pytest.mark.parametrize("case", range(7))
def test_bad_scene_gives_one_line_error_exit_3_and_no_shard(tmp_path, tiny_models, capsys, case):
    name, path, message = list(_bad_scenes(tmp_path))[case]
    out = tmp_path / "out"
    assert _cli(tiny_models, path, "--out", out) == EXIT_BAD_INPUT, name
    err = capsys.readouterr().err.strip()
    assert err.startswith("minescan: error:") and message in err, (name, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_bad_model_directory_gives_exit_4_and_no_shard(tmp_path, tiny_models, capsys):
    import shutil

    path = write_scene(tmp_path / "s.tif", random_scene(np.random.default_rng(8), 210, 210))
    broken = tmp_path / "models"
    shutil.copytree(tiny_models, broken)
    weights = broken / "discovery" / "model.keras"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    for model_dir, message in ((tmp_path / "absent", "does not exist"), (broken / "discovery", "SHA-256")):
        out = tmp_path / "out"
        code = run_cli(["scan", path, "--out", out, "--discovery-model", model_dir,
                        "--impact-model", tiny_models / "impact"])
        assert code == EXIT_BAD_MODEL
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert not out.exists()


def test_shipped_run_config_is_valid_and_equals_the_defaults():
    from minescan.cli.options import scan_config_from

    from tests.helpers import REPO

    assert scan_config_from(REPO / "configs" / "run.yaml", None, False, None) == ScanConfig()


def test_bad_config_value_is_a_one_line_input_error(tmp_path, tiny_models, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("threshold: 1.5\n")
    path = write_scene(tmp_path / "s.tif", random_scene(np.random.default_rng(9), 210, 210))
    assert _cli(tiny_models, path, "--out", tmp_path / "out", "--config", cfg) == EXIT_BAD_INPUT
    assert "threshold" in capsys.readouterr().err


def test_scenes_on_the_manifest_grid_get_national_cell_indices(tmp_path, models):
    from affine import Affine
    from minescan.bands import PIXEL_DEG
    from minescan.batch.manifest import GridDef

    grid = GridDef(crs="EPSG:4326", origin_lon=-45.0, origin_lat=-19.0, pixel_deg=PIXEL_DEG, stride_px=27,
                   scene_step_px=27 * 8, scene_px=27 * 16, overlap_px=27 * 8, owned_cell_offset=1, owned_cells=8)
    data = random_scene(np.random.default_rng(10), 230, 230)
    aligned = Affine(PIXEL_DEG, 0, -45.0 + 27 * 5 * PIXEL_DEG, 0, -PIXEL_DEG, -19.0 - 27 * 3 * PIXEL_DEG)
    det = scan_scene(str(write_scene(tmp_path / "a.tif", data, transform=aligned)), *models,
                     ScanConfig(grid=grid)).detections
    assert (det["global_row"] == det["cell_row"] + 3).all() and (det["global_col"] == det["cell_col"] + 5).all()
    off_grid = Affine(PIXEL_DEG, 0, -45.0 + 10 * PIXEL_DEG, 0, -PIXEL_DEG, -19.0)
    det = scan_scene(str(write_scene(tmp_path / "b.tif", data, transform=off_grid)), *models,
                     ScanConfig(grid=grid)).detections
    assert det["global_row"].isna().all()
