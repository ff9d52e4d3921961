"""The synthetic Landsat time series: mines that live and die, look-alikes, clouds, per-year truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from minescan.errors import InputError
from minescan.synth.landsat import BANDS, SYNTHETIC_TAG, History, synthesize_series


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    out = tmp_path_factory.mktemp("landsat") / "region"
    return out, synthesize_series(out, size=160, first_year=1990, last_year=2011, seed=7)


def test_history_opens_grows_pauses_and_revegetates():
    h = History(opened=2000, growth_years=4, pauses=(2002,), abandoned=2006, revegetation_years=4)
    assert h.progress(1999) == -1
    progress = [h.progress(y) for y in range(2000, 2010)]
    assert progress[0] == pytest.approx(0.35) and progress[-1] == 1.0
    assert progress[2] == progress[1]  # 2002 is a pause: no growth
    assert progress == sorted(progress)
    assert [h.revegetation(y) for y in (2006, 2007, 2010, 2012)] == [0, 0.25, 1.0, 1.0]


def test_files_per_year_with_named_bands_nan_clouds_and_synthetic_tags(series):
    import rasterio

    out, truth = series
    years = list(range(1990, 2012))
    assert truth.years == tuple(years) and truth.mining.shape == (22, 160, 160)
    for year in years:
        with rasterio.open(out / "mosaics" / f"landsat_{year}.tif") as src:
            assert src.descriptions == BANDS and src.dtypes[0] == "float32"
            assert src.tags()["SYNTHETIC"] == SYNTHETIC_TAG and src.res[0] == pytest.approx(0.000269494585)
            data = src.read()
        i = year - 1990
        np.testing.assert_array_equal(np.isnan(data).all(axis=0), truth.cloudy[i])
        assert (data[:, ~truth.cloudy[i]] > 0).all() and (data[:, ~truth.cloudy[i]] <= 1).all()
        with rasterio.open(out / "truth" / f"truth_{year}.tif") as src:
            np.testing.assert_array_equal(src.read(1), truth.mining[i])
    assert truth.cloudy.any() and not truth.cloudy.all(axis=0).any()
    doc = json.loads((out / "objects.geojson").read_text())
    assert doc["synthetic"] is True and len(doc["features"]) == len(truth.objects)


def test_mines_grow_until_abandoned_then_disappear_from_the_truth(series):
    from minescan.synth.landsat import _coverage, _window

    _, truth = series
    kinds = {o.kind for o in truth.objects}
    assert {"garimpo", "open_pit_iron", "quarry_sand"} <= kinds
    assert {"water_dam", "river_bank"} <= kinds
    for obj in truth.targets:
        win = _window(obj.footprint, truth.size)
        area = truth.mining[(slice(None), *win)].sum(axis=(1, 2))
        h = obj.history
        before = [a for y, a in zip(truth.years, area) if y < h.opened]
        worked = [a for y, a in zip(truth.years, area) if h.opened <= y <= (h.abandoned or 9999)]
        assert not any(before) and all(worked)
        assert worked == sorted(worked)
        late = [a for y, a in zip(truth.years, area) if h.abandoned and y >= h.abandoned + h.revegetation_years * 1.3]
        assert not any(late)
        assert (_coverage(obj.footprint, win) >= 0.5).sum() >= max(worked)
    for obj in truth.objects:
        if not obj.is_target:
            win = _window(obj.footprint, truth.size)
            assert not truth.mining[(slice(None), *win)][:, _coverage(obj.footprint, win) >= 1].any()


def test_garimpos_lie_along_the_river(series):
    _, truth = series
    banks = [o for o in truth.objects if o.kind == "river_bank"]
    for garimpo in (o for o in truth.targets if o.kind == "garimpo"):
        assert min(garimpo.footprint.distance(b.footprint) for b in banks) < 40


def test_the_same_seed_gives_the_same_bytes(tmp_path):
    a = synthesize_series(tmp_path / "a", size=64, first_year=2000, last_year=2019, seed=3)
    b = synthesize_series(tmp_path / "b", size=64, first_year=2000, last_year=2019, seed=3)
    c = synthesize_series(tmp_path / "c", size=64, first_year=2000, last_year=2019, seed=4)
    for name in ("mosaics/landsat_2005.tif", "truth/truth_2019.tif", "objects.geojson"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    np.testing.assert_array_equal(a.mining, b.mining)
    assert (tmp_path / "a" / "mosaics/landsat_2005.tif").read_bytes() != (tmp_path / "c" / "mosaics/landsat_2005.tif").read_bytes()


def test_bad_arguments_are_refused_before_writing(tmp_path):
    with pytest.raises(InputError, match="20–40 years"):
        synthesize_series(tmp_path / "x", size=64, first_year=2000, last_year=2010, seed=0)
    with pytest.raises(InputError, match="region size"):
        synthesize_series(tmp_path / "x", size=32, first_year=2000, last_year=2019, seed=0)
    assert not (tmp_path / "x").exists()


def test_the_cli_writes_a_series_the_cube_reads(tmp_path):
    from minescan.series.cube import open_feature_cube
    from tests.helpers import run_cli

    assert run_cli(["synth", "landsat", tmp_path / "r", "--size", "64", "--seed", "1", "--years", "1990-2009"]) == 0
    assert run_cli(["series", "cube", tmp_path / "r" / "mosaics", "--out", tmp_path / "c.zarr"]) == 0
    cube = open_feature_cube(tmp_path / "c.zarr")
    assert cube.years == tuple(range(1990, 2010)) and cube.attrs["synthetic"] == "minescan.synth.landsat"
    assert run_cli(["synth", "landsat", tmp_path / "r", "--seed", "1", "--years", "1990-2000"]) == 3
