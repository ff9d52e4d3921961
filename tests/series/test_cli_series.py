"""The `minescan series` verbs: results through the command line, bad input as one line and exit 3."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from affine import Affine
from minescan.errors import TransientError
from minescan.series.chunked import dask_client
from minescan.series.cube_io import CubeGrid, open_class_cube, write_class_cube
from minescan.series.filters import MINING, apply_filters

from tests.helpers import run_cli, write_scene

GRID = CubeGrid(years=(2000, 2001, 2002, 2003), height=40, width=50,
                transform=Affine(0.00027, 0, -55.0, 0, -0.00027, -6.0), crs="EPSG:4326")


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_every_series_verb_has_help_with_an_example():
    for verb in ("stack-maps", "filter", "substance", "stats"):
        out = subprocess.run([sys.executable, "-m", "minescan", "series", verb, "--help"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and f"minescan series {verb} " in out.stdout.split("Example:")[1]


def test_filter_writes_the_filtered_cube(tmp_path):
    rng = np.random.default_rng(2)
    cube = np.where(rng.random(GRID.shape) < 0.2, MINING, 0).astype(np.uint8)
    write_class_cube(tmp_path / "classes.zarr", cube, GRID)
    assert run_cli(["series", "filter", tmp_path / "classes.zarr", "--out", tmp_path / "f.zarr",
                    "--chunk", "16", "--threads", "1"]) == 0
    np.testing.assert_array_equal(open_class_cube(tmp_path / "f.zarr").read(), apply_filters(cube, GRID.years).classes)


def test_filter_of_a_missing_cube_is_bad_input(tmp_path, capsys):
    assert run_cli(["series", "filter", tmp_path / "none.zarr", "--out", tmp_path / "f.zarr"]) == 3
    assert "does not exist" in one_line_error(capsys)
    assert not (tmp_path / "f.zarr").exists()


def test_filter_of_a_cube_with_unknown_classes_writes_nothing(tmp_path, capsys):
    import zarr

    write_class_cube(tmp_path / "classes.zarr", np.zeros(GRID.shape, np.uint8), GRID)
    zarr.open_group(str(tmp_path / "classes.zarr"), mode="r+")["class"][1, 30, 40] = 4
    assert run_cli(["series", "filter", tmp_path / "classes.zarr", "--out", tmp_path / "f.zarr",
                    "--chunk", "16", "--threads", "1"]) == 3
    assert "values [4]" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.zarr"]


def test_stack_maps_refuses_years_on_different_grids_and_writes_nothing(tmp_path, capsys):
    data = np.zeros((1, 4, 5), np.uint8)
    write_scene(tmp_path / "mining_2000.tif", data, transform=GRID.transform)
    write_scene(tmp_path / "mining_2001.tif", np.zeros((1, 5, 5), np.uint8), transform=GRID.transform)
    assert run_cli(["series", "stack-maps", tmp_path, "--out", tmp_path / "c.zarr"]) == 3
    assert "different grid from year 2000" in one_line_error(capsys)
    assert not (tmp_path / "c.zarr").exists()


def test_stack_maps_then_filter(tmp_path):
    for year in (2000, 2001, 2002):
        data = np.zeros((1, 20, 20), np.uint8)
        data[0, 5:10, 5:10] = 30
        write_scene(tmp_path / f"mining_{year}.tif", data, transform=GRID.transform, nodata=255)
    assert run_cli(["series", "stack-maps", tmp_path, "--out", tmp_path / "c.zarr"]) == 0
    cube = open_class_cube(tmp_path / "c.zarr")
    assert cube.grid.years == (2000, 2001, 2002) and (cube.read()[:, 5:10, 5:10] == MINING).all()


def test_an_unreachable_scheduler_is_transient():
    with pytest.raises(TransientError, match="no Dask scheduler answers"), \
            dask_client("tcp://127.0.0.1:9", timeout="1s"):
        pass
