"""The global scene grid: alignment to the network stride, overlap, ownership, AOI cover."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from minescan.batch import grid
from minescan.scan import geometry


def test_overlap_is_whole_strides_and_covers_the_receptive_field() -> None:
    assert grid.OVERLAP_PX == 216
    assert grid.OVERLAP_PX % geometry.STRIDE == 0
    assert grid.OVERLAP_PX >= geometry.RECEPTIVE_FIELD == 215


def test_scene_step_is_the_multiple_of_27_nearest_the_papers_9216_px() -> None:
    assert grid.SCENE_STEP_PX % geometry.STRIDE == 0
    nearest = min(range(0, 20000, geometry.STRIDE), key=lambda s: abs(s - 9216))
    assert grid.SCENE_STEP_PX == nearest == 9207
    assert grid.SCENE_PX == 9423


def test_pixel_is_ten_metres_of_latitude() -> None:
    assert grid.PIXEL_DEG * 40_075_016.686 / 360 == pytest.approx(10.0)


def test_scene_origins_lie_on_the_stride_of_one_global_grid() -> None:
    for row, col in [(0, 0), (120, 150), (217, 435)]:
        s = grid.scene(row, col)
        assert s.pixel_row % 27 == 0 and s.pixel_col % 27 == 0
        # the transform's corner is the global pixel the scene starts at
        assert s.transform[2] == pytest.approx(grid.ORIGIN_LON + s.pixel_col * grid.PIXEL_DEG)
        assert s.transform[5] == pytest.approx(grid.ORIGIN_LAT - s.pixel_row * grid.PIXEL_DEG)
        assert s.transform[0] == -s.transform[4] == grid.PIXEL_DEG


def test_neighbouring_scenes_overlap_by_exactly_the_overlap() -> None:
    a, b = grid.scene(100, 150), grid.scene(100, 151)
    overlap_deg = a.bounds.east - b.bounds.west
    assert overlap_deg / grid.PIXEL_DEG == pytest.approx(216)


def test_owned_cells_are_computed_exactly_by_the_scene() -> None:
    """The cells a scene owns need exactly the scene's pixels, per the exact sub-tiling rule."""
    first = grid.OWNED_CELL_OFFSET
    owned = geometry.CellRange(first, first + grid.SCENE_STEP_PX // 27)
    tile = geometry.axis_tile(owned, grid.SCENE_PX)
    assert (tile.pixels.start, tile.pixels.stop) == (0, grid.SCENE_PX)
    # every owned cell has its whole receptive field inside the scene
    assert geometry.receptive_field(owned.start).start >= 0
    assert geometry.receptive_field(owned.stop - 1).stop <= grid.SCENE_PX


def test_owned_cells_of_all_scenes_tile_the_global_cell_grid_once() -> None:
    per_scene = grid.SCENE_STEP_PX // 27
    seen: list[int] = []
    for k in range(4):
        s = grid.scene(k, 0)
        first_global = s.pixel_row // 27 + grid.OWNED_CELL_OFFSET
        seen.extend(range(first_global, first_global + per_scene))
    assert seen == list(range(seen[0], seen[0] + 4 * per_scene))


def test_scene_ids_are_stable_and_sort_row_major() -> None:
    assert grid.scene(7, 42).id == "r0007c0042"
    ids = [grid.scene(r, c).id for r in range(3) for c in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 9


def test_scene_outside_the_grid_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        grid.scene(grid.S2_GRID.n_rows, 0)


def test_every_aoi_point_is_owned_by_exactly_one_selected_scene() -> None:
    aoi = shapely.Polygon([(-50.0, -10.0), (-47.2, -9.1), (-47.9, -6.3), (-49.6, -6.8)])
    scenes = grid.scenes_for_aoi(aoi)
    owned = [grid.owned_bounds(s) for s in scenes]
    rng = np.random.default_rng(5)
    x0, y0, x1, y1 = aoi.bounds
    points = [shapely.Point(x, y) for x, y in zip(rng.uniform(x0, x1, 400), rng.uniform(y0, y1, 400))]
    inside = [p for p in points if aoi.contains(p)]
    assert len(inside) > 100
    for p in inside:
        hits = sum(b.west <= p.x < b.east and b.south < p.y <= b.north for b in owned)
        assert hits == 1


def test_aoi_selects_only_scenes_whose_owned_area_it_touches() -> None:
    s = grid.scene(120, 150)
    b = grid.owned_bounds(s)
    inner = shapely.box(b.west + 0.1, b.south + 0.1, b.east - 0.1, b.north - 0.1)
    assert [x.id for x in grid.scenes_for_aoi(inner)] == [s.id]


def test_centred_window_is_centred_on_the_points_pixel() -> None:
    lon, lat = -43.9429, -20.0648
    w = grid.centred_window(lon, lat, 201)
    centre = grid.point_pixel(lon, lat)
    assert (w.pixel_row + 100, w.pixel_col + 100) == (centre.row, centre.col)
    assert w.bounds.west <= lon < w.bounds.east and w.bounds.south < lat <= w.bounds.north
    # 201 px ≈ 0.018°, the paper's 2 km chip
    assert w.bounds.east - w.bounds.west == pytest.approx(0.018, abs=2e-4)


def test_landsat_grid_is_30_m_and_window_aligned() -> None:
    g = grid.LANDSAT_GRID
    assert g.pixel_deg == pytest.approx(3 * grid.PIXEL_DEG)
    assert g.step_px % 256 == 0 and g.overlap_px == 256
    assert math.isclose(g.size_px, 4096)
