"""The synthetic scene and chip generator: bytes, georeferencing, truth, spectra, chips, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from minescan import synth
from minescan.bands import DEFAULT_BANDS, PIXEL_DEG
from minescan.errors import InputError
from shapely.geometry import Point, box


@pytest.fixture(scope="module")
def scene600(tmp_path_factory):
    path = tmp_path_factory.mktemp("scene") / "scene.tif"
    return synth.synthesize_scene(path, size=600, seed=11, origin_lonlat=(-50.0, -6.0))


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    """Two small scenes, sparse enough that 201-px windows clear of every target exist."""
    tmp = tmp_path_factory.mktemp("train")
    return tuple(
        synth.synthesize_scene(tmp / f"s{seed}.tif", size=600, seed=seed, n_mines=2, n_dams=1)
        for seed in (5, 6)
    )


def _read(truth):
    with rasterio.open(truth.path) as src:
        return src.read()


def _median_inside(arr, poly, band):
    """Median of one band over the pixels whose centres lie well inside `poly`."""
    from rasterio.features import geometry_mask

    inner = poly.buffer(-3)
    assert not inner.is_empty
    mask = ~geometry_mask([inner], out_shape=arr.shape[1:], transform=rasterio.Affine.identity())
    return float(np.median(arr[DEFAULT_BANDS.index(band)][mask]))


def test_same_seed_writes_same_bytes_and_another_seed_differs(tmp_path):
    a = synth.synthesize_scene(tmp_path / "a.tif", size=300, seed=3)
    b = synth.synthesize_scene(tmp_path / "b.tif", size=300, seed=3)
    synth.synthesize_scene(tmp_path / "c.tif", size=300, seed=4)
    assert (tmp_path / "a.tif").read_bytes() == (tmp_path / "b.tif").read_bytes()
    assert (tmp_path / "a.tif").read_bytes() != (tmp_path / "c.tif").read_bytes()
    assert [o.polygon_pixels.wkt for o in a.objects] == [o.polygon_pixels.wkt for o in b.objects]


def test_scene_is_a_tiled_deflate_uint16_geotiff_on_the_10m_4326_grid(scene600):
    with rasterio.open(scene600.path) as src:
        assert src.crs.to_epsg() == 4326
        assert src.dtypes == ("uint16",) * 12
        assert src.descriptions == DEFAULT_BANDS
        assert src.nodata == 0
        assert src.profile["tiled"] and src.compression.name == "deflate"
        assert src.width == src.height == 600
        assert src.transform.a == pytest.approx(360 / 40075016.686 * 10, rel=1e-12)
        assert src.transform.e == pytest.approx(-PIXEL_DEG, rel=1e-12)
        assert (src.transform.c, src.transform.f) == (-50.0, -6.0)
        assert src.transform.b == src.transform.d == 0
    assert scene600.transform == src.transform and scene600.bands == DEFAULT_BANDS


def test_band_subset_writes_exactly_those_bands_in_order(tmp_path):
    truth = synth.synthesize_scene(tmp_path / "s.tif", size=128, seed=1, bands=("B8A", "B4", "B3"))
    with rasterio.open(truth.path) as src:
        assert src.count == 3 and src.descriptions == ("B8A", "B4", "B3")
        red, nir = src.read(2).astype(float), src.read(1).astype(float)
    assert nir.mean() > red.mean()  # mostly vegetated background
    with pytest.raises(InputError, match="B13"):
        synth.synthesize_scene(tmp_path / "x.tif", size=128, seed=1, bands=("B2", "B13"))


def test_truth_objects_are_inside_the_scene_apart_and_targets_keep_off_the_edge(scene600):
    objs = scene600.objects
    assert len(scene600.targets) >= 3 and len(scene600.lookalikes) >= 3
    for o in objs:
        minx, miny, maxx, maxy = o.polygon_pixels.bounds
        assert 0 <= minx and 0 <= miny and maxx <= 600 and maxy <= 600, o
        if o.is_target:
            assert min(minx, miny, 600 - maxx, 600 - maxy) >= synth.TARGET_EDGE_MARGIN, o
            side = max(maxx - minx, maxy - miny)
            assert synth.MIN_OBJECT_PX * 0.6 <= side <= synth.MAX_OBJECT_PX * 1.6, (o.kind, side)
    for i, a in enumerate(objs):
        for b in objs[i + 1:]:
            assert not a.polygon_pixels.intersects(b.polygon_pixels), (a.id, b.id)


def test_target_flags_impacts_and_ores_follow_the_paper():
    impact = {k.name: (k.is_target, k.impact) for k in synth.KINDS.values()}
    assert impact["open_pit_iron"] == impact["garimpo"] == impact["tailings_dam"] == (True, "high")
    assert impact["quarry_sand"] == impact["quarry_gravel"] == (True, "low")
    for lookalike in ("water_dam", "river_bank", "town", "bare_soil"):
        assert impact[lookalike] == (False, None)
    assert synth.KINDS["quarry_gravel"].ores == ("Cascalho",)
    assert "Minério de Ferro" in synth.KINDS["open_pit_iron"].ores


def test_small_scene_gets_a_target_and_both_paper_false_positives(tmp_path):
    truth = synth.synthesize_scene(tmp_path / "s.tif", size=400, seed=2)
    kinds = {o.kind for o in truth.lookalikes}
    assert len(truth.targets) >= 1
    assert {"water_dam", "river_bank"} <= kinds


def test_object_counts_can_be_set_and_grow_slower_than_area():
    mines, dams, looks = synth.default_counts(600)
    assert (mines, dams, looks) == (3, 2, 8)
    big = synth.default_counts(9216)
    assert 100 <= big[0] + big[1] <= 250  # not 1,400 (one per 6 km²) shoulder to shoulder
    assert synth.default_counts(200)[:2] == (0, 0)  # no room 120 px from every edge


def test_spectra_table_orders_ndvi_and_keeps_water_dark_in_nir():
    s = {k: dict(zip(synth.SPECTRA_BANDS, v)) for k, v in synth.SPECTRA.items()}

    def ndvi(m):
        return (s[m]["B8"] - s[m]["B4"]) / (s[m]["B8"] + s[m]["B4"])

    assert ndvi("forest") > ndvi("pasture") > ndvi("bare_soil") > 0
    assert s["water"]["B8"] < 500 and s["water"]["B11"] < 300
    for band in ("B2", "B3", "B4"):
        assert s["tailings"][band] > s["water"][band] * 1.4
    assert all(v["B10"] < 30 for v in s.values())


def test_rendered_dams_tailings_brighter_than_clear_water_and_b10_flat(tmp_path):
    truth = synth.synthesize_scene(tmp_path / "s.tif", size=600, seed=11, n_dams=2, n_lookalikes=4)
    arr = _read(truth)
    tailings = [o for o in truth.objects if o.kind == "tailings_dam"]
    water = [o for o in truth.objects if o.kind == "water_dam"]
    assert tailings and water
    for band in ("B3", "B4"):
        assert min(_median_inside(arr, o.polygon_pixels, band) for o in tailings) > max(
            _median_inside(arr, o.polygon_pixels, band) for o in water)
    assert max(_median_inside(arr, o.polygon_pixels, "B8") for o in water) < 800
    b10 = arr[DEFAULT_BANDS.index("B10")]
    assert b10.max() < 60 and b10.std() < 5
    assert (arr > 0).all()  # no accidental no-data pixels


def test_nodata_wedge_is_zero_in_every_band_declared_and_free_of_targets(tmp_path):
    truth = synth.synthesize_scene(tmp_path / "s.tif", size=500, seed=8, nodata_fraction=0.2)
    with rasterio.open(truth.path) as src:
        assert src.nodata == 0
        arr = src.read()
        mask = src.dataset_mask()
    zero_all = (arr == 0).all(axis=0)
    assert ((arr == 0).any(axis=0) == zero_all).all()  # no pixel is no-data in some bands only
    assert zero_all.mean() == pytest.approx(0.2, abs=0.01)
    assert ((mask == 0) == zero_all).all()
    rows, cols = np.nonzero(zero_all)
    for o in truth.objects:
        inside = [o.polygon_pixels.contains(Point(c + 0.5, r + 0.5))
                  for r, c in zip(rows[::97], cols[::97])]
        assert not any(inside), o


def test_truth_geojson_round_trips_as_rfc7946(scene600, tmp_path):
    path = synth.write_truth_geojson(scene600, tmp_path / "truth.geojson")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    feat = doc["features"][0]
    assert set(feat["properties"]) == {"id", "kind", "is_target", "impact", "ore"}
    back = synth.read_truth_geojson(path)
    assert [(o.id, o.kind, o.is_target, o.impact, o.ore) for o in back] == [
        (o.id, o.kind, o.is_target, o.impact, o.ore) for o in scene600.objects]
    west, north = -50.0, -6.0
    east, south = west + 600 * PIXEL_DEG, north - 600 * PIXEL_DEG
    for a, b in zip(back, scene600.objects):
        assert a.polygon_lonlat.exterior.is_ccw  # RFC 7946 right-hand rule
        lo_x, lo_y, hi_x, hi_y = a.polygon_lonlat.bounds
        assert west <= lo_x and hi_x <= east and south <= lo_y and hi_y <= north
        assert a.polygon_pixels.symmetric_difference(b.polygon_pixels).area < 1e-3
    loaded = synth.load_scene_truth(scene600.path, path)
    assert loaded.size == 600 and loaded.bands == DEFAULT_BANDS and len(loaded.objects) == len(back)


def test_discovery_chips_are_balanced_and_positives_really_hold_targets(training):
    x, y, info = synth.sample_discovery_chips(training, 12, seed=0)
    assert x.shape == (12, 201, 201, 12) and x.dtype == np.uint16
    assert sorted(np.bincount(y, minlength=2).tolist()) == [6, 6]
    assert (x > 0).all()  # no chip touches no-data
    by_path = {t.path: t for t in training}
    sources = set()
    for chip, label, meta in zip(x, y, info):
        truth = by_path[meta.scene]
        window = box(meta.col, meta.row, meta.col + 201, meta.row + 201)
        on_targets = sum(o.polygon_pixels.intersection(window).area for o in truth.targets)
        if label == 1:
            assert on_targets >= 0.01 * 201 * 201, meta
        else:
            assert on_targets == 0, meta
            sources.add(meta.source)
        with rasterio.open(meta.scene) as src:
            direct = src.read(window=rasterio.windows.Window(meta.col, meta.row, 201, 201))
        assert (np.moveaxis(direct, 0, -1) == chip).all()
        assert meta.transform == truth.transform @ rasterio.Affine.translation(meta.col, meta.row)
    assert sources == {"lookalike", "background"}


def test_discovery_chips_avoid_nodata(tmp_path):
    truth = synth.synthesize_scene(tmp_path / "s.tif", size=600, seed=21, nodata_fraction=0.15)
    x, y, _ = synth.sample_discovery_chips(truth, 6, seed=1)
    assert (x > 0).all() and len(y) == 6


def test_impact_patches_are_balanced_and_centred_on_the_right_objects(training):
    x, y, info = synth.sample_impact_patches(training, 9, seed=2)
    assert x.shape == (9, 21, 21, 12)
    assert np.bincount(y, minlength=3).tolist() == [3, 3, 3]
    by_path = {t.path: t for t in training}
    for label, meta in zip(y, info):
        truth = by_path[meta.scene]
        centre = Point(meta.col + 10.5, meta.row + 10.5)
        hit = [o for o in truth.targets if o.polygon_pixels.contains(centre)]
        if label < 2:
            assert len(hit) == 1 and hit[0].impact == ("high", "low")[label], meta
            inside = hit[0].polygon_pixels.intersection(box(meta.col, meta.row, meta.col + 21, meta.row + 21))
            assert inside.area >= 0.6 * 21 * 21
        else:
            assert not hit, meta


def test_impact_sampler_says_which_class_is_missing(tmp_path):
    truth = synth.synthesize_scene(tmp_path / "s.tif", size=300, seed=1, n_mines=0, n_dams=0)
    with pytest.raises(InputError, match="'high'-impact"):
        synth.sample_impact_patches(truth, 3, seed=0)


def test_chip_folders_follow_the_authors_layout(tmp_path):
    x = np.arange(2 * 5 * 5 * 3, dtype=np.uint16).reshape(2, 5, 5, 3) + 1
    out = synth.write_chip_folders(tmp_path / "chips", x, np.array([1, 1]), ("not_mine", "mine"),
                                   bands=("B2", "B3", "B4"), seed=9)
    assert sorted(p.name for p in (out / "mine").iterdir()) == ["mine_00001.tif", "mine_00002.tif"]
    assert not (out / "not_mine").exists()
    with rasterio.open(out / "mine" / "mine_00002.tif") as src:
        assert src.descriptions == ("B2", "B3", "B4") and src.crs.to_epsg() == 4326
        assert (np.moveaxis(src.read(), 0, -1) == x[1]).all()
    meta = json.loads((out / "chips.json").read_text())
    assert meta["counts"] == {"not_mine": 0, "mine": 2} and meta["seed"] == 9 and meta["size"] == 5


def test_cli_synth_scene_writes_scene_truth_and_summary(tmp_path):
    from minescan.cli.main import cli

    out, truth = tmp_path / "s.tif", tmp_path / "t.geojson"
    result = CliRunner().invoke(cli, [
        "synth", "scene", str(out), "--size", "400", "--seed", "2", "--bands", "B2,B3,B4,B8",
        "--truth", str(truth), "--origin", "-55.5,-7.25", "--nodata-fraction", "0.05"])
    assert result.exit_code == 0, result.output
    assert "16.0 km²" in result.output and "targets" in result.output
    with rasterio.open(out) as src:
        assert src.descriptions == ("B2", "B3", "B4", "B8")
        assert (src.transform.c, src.transform.f) == (-55.5, -7.25)
    assert len(synth.read_truth_geojson(truth)) >= 3
    bad = CliRunner().invoke(cli, ["synth", "scene", str(out), "--size", "400", "--seed", "2",
                                   "--bands", "B2,B99"])
    assert bad.exit_code == 2 and "B99" in bad.output


def test_cli_synth_chips_writes_readable_layout_and_refuses_to_clobber(tmp_path):
    from minescan.cli.main import cli

    out = tmp_path / "chips"
    args = ["synth", "chips", str(out), "--n", "6", "--seed", "4", "--kind", "impact",
            "--scene-size", "600", "--scenes", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "chips.json").read_text())
    assert meta["counts"] == {"high": 2, "low": 2, "no_ore": 2} and meta["kind"] == "impact"
    for cls in ("high", "low", "no_ore"):
        with rasterio.open(out / cls / f"{cls}_00001.tif") as src:
            assert (src.width, src.height, src.count) == (21, 21, 12)
            assert src.crs.to_epsg() == 4326
            assert math.isclose(src.transform.a, PIXEL_DEG)
    again = CliRunner().invoke(cli, args)
    assert isinstance(again.exception, InputError) and "--overwrite" in str(again.exception)
    assert CliRunner().invoke(cli, [*args, "--overwrite"]).exit_code == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_truth_geojson_without_its_grid_needs_a_transform(scene600, tmp_path):
    path = synth.write_truth_geojson(scene600, tmp_path / "truth.geojson")
    doc = json.loads(path.read_text(encoding="utf-8"))
    del doc["scene"]
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InputError, match="pass the scene's transform"):
        synth.read_truth_geojson(path)
    objs = synth.read_truth_geojson(path, scene600.transform)
    assert objs[0].polygon_pixels.symmetric_difference(scene600.objects[0].polygon_pixels).area < 1e-3
