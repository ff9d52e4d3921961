"""Class cubes: the zarr v3 layout xarray reads, and annual GeoTIFFs stacked on one grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from minescan.errors import InputError
from minescan.series.cube_io import (
    CubeGrid,
    open_class_cube,
    stack_class_geotiffs,
    write_class_cube,
    year_of,
)
from minescan.series.filters import MINING, NODATA, NOT_MINING

from tests.helpers import write_scene

TRANSFORM = Affine(0.00025, 0, -50.0, 0, -0.00025, -5.0)


def test_a_class_cube_round_trips_and_xarray_reads_it(tmp_path):
    import xarray as xr

    cube = np.zeros((3, 5, 7), dtype=np.uint8)
    cube[1, 2, 3] = MINING
    cube[2, 0, 0] = 115  # a Table 3 class_id (industrial gold)
    cube[0, 4, 6] = NODATA
    grid = CubeGrid(years=(1985, 1986, 1987), height=5, width=7, transform=TRANSFORM, crs="EPSG:4326")
    write_class_cube(tmp_path / "c.zarr", cube, grid, attrs={"source": "test"})
    opened = open_class_cube(tmp_path / "c.zarr")
    assert opened.grid == grid and opened.attrs == {"source": "test"}
    np.testing.assert_array_equal(opened.read(), cube)
    with xr.open_zarr(tmp_path / "c.zarr") as ds:
        assert ds["class"].dims == ("year", "y", "x") and ds["class"].dtype == np.uint8
        assert ds["year"].values.tolist() == [1985, 1986, 1987]
        assert ds["x"].values[0] == pytest.approx(-50.0 + 0.000125)
        assert ds.attrs["crs"] == "EPSG:4326"
        assert int(ds["class"].sel(year=1986, x=-50 + 3.5 * 0.00025, y=-5 - 2.5 * 0.00025, method="nearest")) == MINING


def test_a_cube_with_unknown_values_is_refused(tmp_path):
    grid = CubeGrid(years=(2000,), height=1, width=2, transform=TRANSFORM, crs="EPSG:4326")
    with pytest.raises(InputError, match="neither classes nor class ids"):
        write_class_cube(tmp_path / "c.zarr", np.array([[[0, 99]]], np.uint8), grid)
    assert not (tmp_path / "c.zarr").exists()


def test_a_folder_that_is_not_a_cube_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        open_class_cube(tmp_path / "nothing.zarr")


def test_annual_geotiffs_stack_with_mining_nodata_and_the_rest(tmp_path):
    paths = []
    for year, value in ((2001, 30), (2000, 3)):
        data = np.full((1, 4, 5), value, dtype=np.uint8)
        data[0, 0, 0] = 255  # the files' nodata
        paths.append(write_scene(tmp_path / f"mining_{year}.tif", data, transform=TRANSFORM, nodata=255))
    cube, grid = stack_class_geotiffs(paths)
    assert grid.years == (2000, 2001) and grid.transform == TRANSFORM and (grid.height, grid.width) == (4, 5)
    assert cube[0, 0, 0] == NODATA and cube[0, 1, 1] == NOT_MINING and cube[1, 1, 1] == MINING


def test_annual_geotiffs_on_different_grids_are_refused(tmp_path):
    data = np.zeros((1, 4, 5), dtype=np.uint8)
    a = write_scene(tmp_path / "mining_2000.tif", data, transform=TRANSFORM)
    b = write_scene(tmp_path / "mining_2001.tif", data, transform=TRANSFORM @ Affine.translation(1, 0))
    with pytest.raises(InputError, match=r"mining_2001.tif \(year 2001\) is on a different grid from year 2000"):
        stack_class_geotiffs([a, b])


@pytest.mark.parametrize("name", ["mining.tif", "map_2019_2020.tif"])
def test_a_file_name_needs_exactly_one_year(name):
    with pytest.raises(InputError, match="exactly one year"):
        year_of(Path(name))
