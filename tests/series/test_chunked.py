"""The chunked filters equal the in-memory ones, also where patches cross chunk borders."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from minescan.errors import InputError
from minescan.series.chunked import (
    SeriesFilterConfig,
    filter_cube,
    filter_window,
    spatial_halo,
)
from minescan.series.cube_io import (
    CubeGrid,
    Window,
    chunk_windows,
    create_class_cube,
    open_class_cube,
    write_class_cube,
)
from minescan.series.filters import MINING, NODATA, NOT_MINING, apply_filters

CHUNK = 16


def grid_for(cube: np.ndarray, first_year: int = 2000) -> CubeGrid:
    years, height, width = cube.shape
    return CubeGrid(years=tuple(range(first_year, first_year + years)), height=height, width=width,
                    transform=Affine(0.00025, 0, -50.0, 0, -0.00025, -5.0), crs="EPSG:4326")


def write(tmp_path, cube: np.ndarray, name: str = "classes.zarr") -> tuple[str, CubeGrid]:
    grid = grid_for(cube)
    path = tmp_path / name
    write_class_cube(path, cube, grid, chunk=CHUNK)
    return str(path), grid


def assert_matches_in_memory(src: str, dst: str, cube: np.ndarray, grid: CubeGrid, summary) -> None:
    expected = apply_filters(cube, grid.years)
    out = open_class_cube(dst)
    assert out.grid == grid
    np.testing.assert_array_equal(out.read(), expected.classes)
    np.testing.assert_array_equal(out.read(name="year_mask"), expected.year_mask)
    assert summary.counts == expected.counts()


def random_cube(seed: int, shape=(12, 70, 90)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.array([NOT_MINING, MINING, NODATA], dtype=np.uint8)
    cube = rng.choice(values, size=shape, p=[0.62, 0.3, 0.08])
    cube[:, 40:60, 5:80] = MINING  # one big mine over several chunks
    return cube


@pytest.mark.parametrize("seed", [0, 1])
def test_chunked_equals_in_memory_on_random_cubes(tmp_path, seed):
    cube = random_cube(seed)
    src, grid = write(tmp_path, cube)
    summary = filter_cube(src, tmp_path / "out.zarr", SeriesFilterConfig(chunk=CHUNK), threads=2)
    assert summary.windows == 5 * 6
    assert summary.counts["spatial"] > 0 and summary.counts["gap_filled"] > 0
    assert_matches_in_memory(src, str(tmp_path / "out.zarr"), cube, grid, summary)


def border_patches() -> np.ndarray:
    """Patches laid across the 16-pixel chunk borders of a 40×48 map, in every year of 10."""
    one = np.zeros((40, 48), dtype=np.uint8)
    one[2, 12:21] = MINING  # 9 px across the x border at 16: removed
    one[5, 11:21] = MINING  # 10 px across it: kept
    one[15:18, 15:18] = MINING  # a 3×3 block on the corner (16, 16): removed
    one[30, 10:20] = MINING  # 10 px, from column 10 ...
    one[31, 20] = MINING  # ... plus a diagonal step across the border: 11 px, kept
    rows = np.arange(20, 40)
    one[rows, 30 + np.abs(rows % 8 - 4)] = MINING  # a 20-px zig-zag across the y border at 32: kept
    one[8:12, 36:48] = MINING  # a 48-px block across nothing but the map's right edge: kept
    return np.repeat(one[np.newaxis], 10, axis=0)


def test_chunked_equals_in_memory_on_patches_crossing_chunk_borders(tmp_path):
    cube = border_patches()
    src, grid = write(tmp_path, cube)
    summary = filter_cube(src, tmp_path / "out.zarr", SeriesFilterConfig(chunk=CHUNK), threads=2)
    assert_matches_in_memory(src, str(tmp_path / "out.zarr"), cube, grid, summary)
    out = open_class_cube(tmp_path / "out.zarr").read()[0]
    assert not out[2].any() and not out[15:18, 15:18].any()
    assert (out[5, 11:21] == MINING).all() and out[31, 20] == MINING
    assert (out[8:12, 36:48] == MINING).all()
    assert summary.counts["spatial"] == 10 * (9 + 9)


def test_a_halo_of_min_pixels_minus_two_is_not_enough(tmp_path):
    # A 10-pixel line from column 15 (first window) to 24: the first window must see 9
    # columns past its edge to count all ten pixels.
    cube = np.zeros((3, 16, 32), dtype=np.uint8)
    cube[:, 5, 15:25] = MINING
    src, grid = write(tmp_path, cube)
    config = SeriesFilterConfig(chunk=CHUNK)
    first = Window(0, 0, 16, 16)
    for halo, kept in ((spatial_halo(10), True), (spatial_halo(10) - 1, False)):
        dst = tmp_path / f"halo{halo}.zarr"
        create_class_cube(dst, grid, attrs={}, chunk=CHUNK, with_year_mask=True)
        filter_window(src, str(dst), first, config, halo)
        assert (open_class_cube(dst).read(first)[:, 5, 15] == MINING).all() == kept


def test_a_given_local_cluster_runs_the_windows(tmp_path):
    from distributed import Client, LocalCluster

    cube = random_cube(3, shape=(6, 40, 40))
    src, grid = write(tmp_path, cube)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        summary = filter_cube(src, tmp_path / "out.zarr", SeriesFilterConfig(chunk=CHUNK), client=client)
    assert_matches_in_memory(src, str(tmp_path / "out.zarr"), cube, grid, summary)


def test_a_bad_value_in_one_window_fails_and_writes_nothing(tmp_path):
    import zarr

    src, _ = write(tmp_path, random_cube(4, shape=(4, 40, 40)))
    # write_class_cube refuses such a value, so plant it in the store behind its back
    zarr.open_group(src, mode="r+")["class"][2, 35, 35] = 7
    with pytest.raises(InputError, match=r"values \[7\]"):
        filter_cube(src, tmp_path / "out.zarr", SeriesFilterConfig(chunk=CHUNK), threads=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.zarr"]


def test_an_existing_output_is_kept_without_overwrite(tmp_path):
    cube = random_cube(5, shape=(3, 20, 20))
    src, _ = write(tmp_path, cube)
    (tmp_path / "out.zarr").mkdir()
    with pytest.raises(InputError, match="--overwrite"):
        filter_cube(src, tmp_path / "out.zarr", threads=1)
    with pytest.raises(InputError, match="input cube"):
        filter_cube(src, src, threads=1, overwrite=True)


def test_chunk_windows_tile_the_grid_once():
    grid = grid_for(np.zeros((2, 70, 90), np.uint8))
    windows = list(chunk_windows(grid, 32))
    covered = np.zeros((70, 90), dtype=int)
    for w in windows:
        covered[w.slices] += 1
    assert (covered == 1).all() and len(windows) == 3 * 3
    assert Window(0, 64, 32, 26).grown(9, grid) == Window(0, 55, 41, 35)
