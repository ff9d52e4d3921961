"""The feature cube: the method's six features, computed once, no-data kept, one grid for all years."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from minescan.errors import InputError
from minescan.series.cube import (
    FEATURES,
    build_cube,
    features_from_bands,
    find_year_files,
    open_feature_cube,
)
from tests.helpers import run_cli, write_scene

PX = 0.00027
TRANSFORM = Affine(PX, 0, -56.0, 0, -PX, -6.0)


def _write(path, data, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_scene(path, data, **{"transform": TRANSFORM, "nodata": None, **kwargs})


def _raw(path, green, red, nir, swir1, transform=TRANSFORM):
    data = np.stack([green, red, nir, swir1]).astype(np.float32)
    return _write(path, data, transform=transform, descriptions=("green", "red", "nir", "swir1"))


def test_features_are_the_methods_six_in_the_export_order():
    from minescan.acquire.composite import LANDSAT_BANDS

    assert FEATURES == LANDSAT_BANDS == ("swir1", "nir", "red", "mndwi", "ndvi", "ndsi")


def test_indices_by_hand():
    green, red, nir, swir1 = (np.array([[v]], np.float32) for v in (0.10, 0.05, 0.40, 0.20))
    f = features_from_bands(green, red, nir, swir1)[0, 0]
    np.testing.assert_allclose(f[:3], [0.20, 0.40, 0.05])
    np.testing.assert_allclose(f[3], (0.10 - 0.20) / (0.10 + 0.20), rtol=1e-6)  # MNDWI
    np.testing.assert_allclose(f[4], (0.40 - 0.05) / (0.40 + 0.05), rtol=1e-6)  # NDVI
    np.testing.assert_allclose(f[5], (0.20 - 0.40) / (0.20 + 0.40), rtol=1e-6)  # NDSI (soil)


def test_no_data_in_any_band_is_no_data_in_every_feature_and_never_filled():
    bands = [np.full((2, 2), v, np.float32) for v in (0.1, 0.05, 0.4, 0.2)]
    bands[2][0, 1] = np.nan
    zero = [np.zeros((1, 1), np.float32)] * 4
    f = features_from_bands(*bands)
    assert np.isnan(f[0, 1]).all() and np.isfinite(f[[0, 1, 1], [0, 0, 1]]).all()
    assert np.isnan(features_from_bands(*zero)[0, 0, 3:]).all()  # 0/0 is undefined, not 0


def test_a_folder_of_yearly_band_mosaics_becomes_a_cube(tmp_path):
    rng = np.random.default_rng(0)
    expected = {}
    for year in (2001, 2000, 2002):
        bands = rng.uniform(0.02, 0.5, (4, 6, 5)).astype(np.float32)
        bands[:, 0, 0] = np.nan if year == 2001 else bands[:, 0, 0]
        _raw(tmp_path / "mosaics" / f"mosaic_{year}.tif", *bands)
        expected[year] = features_from_bands(*bands)
    grid = build_cube(tmp_path / "mosaics", tmp_path / "cube.zarr")
    cube = open_feature_cube(tmp_path / "cube.zarr")
    assert cube.years == grid.years == (2000, 2001, 2002)
    assert cube.features == FEATURES and cube.grid.crs == "EPSG:4326"
    assert cube.grid.transform.almost_equals(TRANSFORM)
    for year, want in expected.items():
        np.testing.assert_array_equal(cube.year_features(year), want)
    assert np.isnan(cube.year_features(2001)[0, 0]).all()
    np.testing.assert_array_equal(cube.year_features(2002, ["ndvi", "red"]), expected[2002][..., [4, 2]])


def test_the_acquire_export_layout_is_read_as_it_is_written(tmp_path):
    """`minescan acquire landsat` writes <year>/<tile>.tif: six float32 features, −9999 no-data."""
    rng = np.random.default_rng(1)
    for year in (1990, 1991):
        for tile in ("r0001c0002", "r0001c0003"):
            data = rng.uniform(-0.5, 0.5, (6, 4, 4)).astype(np.float32)
            data[:, 1, 1] = -9999.0
            _write(tmp_path / "export" / str(year) / f"{tile}.tif", data, nodata=-9999.0,
                   descriptions=FEATURES if tile.endswith("2") else None)
    with pytest.raises(InputError, match="pass --tile"):
        find_year_files(tmp_path / "export")
    for tile in ("r0001c0002", "r0001c0003"):  # named bands, then the unnamed export order
        build_cube(tmp_path / "export", tmp_path / f"{tile}.zarr", tile=tile)
        cube = open_feature_cube(tmp_path / f"{tile}.zarr")
        assert cube.years == (1990, 1991)
        year = cube.year_features(1991)
        assert np.isnan(year[1, 1]).all() and not np.isnan(np.delete(year.reshape(16, 6), 5, 0)).any()


def test_years_on_different_grids_are_refused_and_nothing_is_written(tmp_path):
    bands = np.full((4, 3, 3), 0.1, np.float32)
    _raw(tmp_path / "m" / "y2000.tif", *bands)
    _raw(tmp_path / "m" / "y2001.tif", *bands, transform=TRANSFORM @ Affine.translation(1, 0))
    code = run_cli(["series", "cube", tmp_path / "m", "--out", tmp_path / "cube.zarr"])
    assert code == 3
    assert not (tmp_path / "cube.zarr").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(InputError, match=r"y2001.tif \(2001\) is on a different grid"):
        build_cube(tmp_path / "m", tmp_path / "cube.zarr")


def test_an_existing_cube_is_kept_unless_overwrite(tmp_path):
    bands = np.full((4, 3, 3), 0.1, np.float32)
    _raw(tmp_path / "m" / "2000.tif", *bands)
    assert run_cli(["series", "cube", tmp_path / "m", "--out", tmp_path / "c.zarr"]) == 0
    before = (tmp_path / "c.zarr" / "zarr.json").read_bytes()
    assert run_cli(["series", "cube", tmp_path / "m", "--out", tmp_path / "c.zarr"]) == 3
    assert (tmp_path / "c.zarr" / "zarr.json").read_bytes() == before
    assert run_cli(["series", "cube", tmp_path / "m", "--out", tmp_path / "c.zarr", "--overwrite"]) == 0


def test_mosaics_without_the_needed_bands_or_years_are_clear_errors(tmp_path):
    _write(tmp_path / "a" / "2000.tif", np.zeros((3, 2, 2), np.float32), descriptions=("red", "nir", "blue"))
    with pytest.raises(InputError, match="name them"):
        build_cube(tmp_path / "a", tmp_path / "c.zarr")
    _write(tmp_path / "b" / "mosaic.tif", np.zeros((6, 2, 2), np.float32))
    with pytest.raises(InputError, match="named with a year"):
        build_cube(tmp_path / "b", tmp_path / "c.zarr")
    assert not (tmp_path / "c.zarr").exists()
