"""The discovery network's output geometry (Balaniuk et al. 2020, Table 2; docs/ARCHITECTURE.md, "Geometry"), pinned."""

from __future__ import annotations

import numpy as np
import pytest
from minescan.scan import geometry as g


@pytest.mark.parametrize(
    "pixels, cells",
    [(188, 0), (189, 1), (200, 1), (201, 1), (215, 1), (216, 2), (242, 2), (243, 3), (4608, 164), (9216, 335)],
)
def test_cell_count_is_triple_floor_third_minus_six(pixels, cells):
    assert g.n_cells(pixels) == cells
    assert g.n_cells(pixels) == max(0, ((pixels // 3) // 3) // 3 - 6)


def test_paper_quadrant_gives_the_papers_164_cell_grid():
    # Balaniuk et al. 2020, §4.3: "The FCN output for each patch is a 164 × 164 grid"
    assert g.n_cells(4608) == 164


@pytest.mark.parametrize("cell", [0, 1, 7, 334])
def test_cell_chip_centre_and_patch(cell):
    assert g.chip_window(cell) == g.PixelRange(27 * cell, 27 * cell + 201)
    assert g.centre_pixel(cell) == 27 * cell + 100
    patch = g.patch_window(cell)
    assert (patch.start, patch.stop) == (27 * cell + 90, 27 * cell + 111)
    rf = g.receptive_field(cell)
    assert len(rf) == 215 and rf.start == 27 * cell - 13 and rf.stop == 27 * cell + 202


@pytest.mark.parametrize("size", [201, 228, 229, 500, 1001, 2049, 9216, 9217])
@pytest.mark.parametrize("max_cells", [1, 2, 5, 40, 1000])
def test_subtiles_own_every_cell_exactly_once_on_the_27px_grid(size, max_cells):
    tiles = g.split_axis(size, max_cells)
    owned = np.zeros(g.n_cells(size), int)
    for t in tiles:
        owned[t.cells.start : t.cells.stop] += 1
        assert t.pixels.start % 27 == 0
        assert 0 <= t.pixels.start and t.pixels.stop <= size
        assert len(t.cells) <= max_cells
        # the tile's own output must contain the cells it owns
        assert t.first_local_cell + len(t.cells) <= g.n_cells(len(t.pixels))
        # and every owned cell's receptive field (clipped to the scene) is inside the tile
        assert t.pixels.start <= max(0, g.receptive_field(t.cells.start).start)
        assert t.pixels.stop >= min(size, g.receptive_field(t.cells.stop - 1).stop)
    assert (owned == 1).all()


@pytest.mark.parametrize(("backend", "budget_mb"), [("onnxruntime", None), ("openvino", 3300), ("tensorflow", 3300)])
def test_paper_scene_split_meets_the_halo_overhead_target(backend, budget_mb):
    """The default backend within the default budget; the others need ≈ 3.3 GB for it."""
    from minescan.scan.config import ScanConfig
    from minescan.scan.inference import max_tile_pixels_for_budget

    budget = (budget_mb or ScanConfig().memory_budget_mb) * 2**20
    tiles = g.plan_subtiles(9216, 9216, max_tile_pixels_for_budget(budget, 12, backend))
    assert g.halo_overhead(tiles, 9216, 9216) <= 1.15
    assert max(t.n_input_pixels for t in tiles) <= max_tile_pixels_for_budget(budget, 12, backend)


def test_whole_array_plan_is_one_tile():
    (tile,) = g.plan_subtiles(1000, 700, None)
    assert (tile.row.pixels, tile.col.pixels) == (g.PixelRange(0, 1000), g.PixelRange(0, 700))


def test_on_a_gpu_the_tile_follows_free_device_memory_not_the_cpu_constant():
    from minescan.scan.inference import NETWORK_BYTES_PER_PIXEL, max_tile_pixels_for_budget

    budget = 64 * 2**30  # a roomy host: the device is the limit
    small, large = (max_tile_pixels_for_budget(budget, 12, "tensorflow", gpu) for gpu in (8 * 2**30, 80 * 2**30))
    assert large == 10 * small or abs(large - 10 * small) <= 10
    assert small * (NETWORK_BYTES_PER_PIXEL["tensorflow"] + 48) <= 8 * 2**30
    assert max_tile_pixels_for_budget(budget, 12, "tensorflow") != small
    tiles = g.plan_subtiles(9216, 9216, large)
    assert len(tiles) == 1  # an 80 GB device takes the paper's scene whole: no halo at all
