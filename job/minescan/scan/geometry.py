"""Geometry of the discovery network (Balaniuk et al. 2020, Table 2), derived once and tested alone.

The network is conv3x3(same) → pool3 → conv3x3(same) → pool3 → conv3x3(same) → pool3 →
conv7x7(valid) → conv1x1. Tracing one output cell back through it:

    cell i  ← pool3 rows [i, i+6]          (7x7 valid)
            ← conv3 rows [3i, 3i+20]       (pool 3, stride 3)
            ← pool2 rows [3i-1, 3i+21]     (3x3 same)
            ← conv2 rows [9i-3, 9i+65]
            ← pool1 rows [9i-4, 9i+66]
            ← conv1 rows [27i-12, 27i+200]
            ← input rows [27i-13, 27i+201]

So the output stride is 27, the training chip of cell i is input rows [27i, 27i+201) with
centre pixel 27i+100, and the receptive field is 215 px: 13 px *before* the chip and 1 px
after it (the `same` pads are symmetric but the pools floor, which drops the tail).

Exact sub-tiling follows from the same trace. A tile whose origin is a multiple of 27 keeps
every pool window aligned with whole-array inference. Zero padding at a tile's cut edge
corrupts one extra row per `same` conv; worked through the pools, a tile that starts at
27·(c0−1) computes cell c0 exactly (one 27-px halo before), and a tile that ends at
27·(c1+7) computes cell c1−1 exactly (eight 27-px units after the last cell's origin).
At the true scene edge a tile runs to the edge so its padding *is* the whole array's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: output stride of the discovery network (three 3x3/3 pools)
STRIDE = 27
#: training chip edge, px (2 km at 10 m; Balaniuk et al. 2020, §3.1)
CHIP = 201
#: offset of a cell's chip centre from its chip origin, px
CENTRE_OFFSET = CHIP // 2
#: receptive field of one output cell, px, and how it sits around the chip
RF_BEFORE = 13
RF_AFTER = 1
RECEPTIVE_FIELD = RF_BEFORE + CHIP + RF_AFTER
#: impact classifier patch edge, px (200 m; Balaniuk et al. 2020, §3.1)
PATCH = 21
#: last-layer kernel, in pooled units: the 7x7 valid conv eats 6 cells
_TAIL_CELLS = 6
#: halo in 27-px units a tile needs before its first cell and after its last cell's origin
HALO_BEFORE_UNITS = 1
HALO_AFTER_UNITS = 8


@dataclass(frozen=True, slots=True)
class CellRange:
    """Half-open range of output cells along one axis."""

    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, slots=True)
class PixelRange:
    """Half-open range of input pixels along one axis."""

    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, slots=True)
class AxisTile:
    """One sub-tile along an axis: the input pixels it reads, the cells it owns.

    `first_local_cell` is the index, in the tile's own output, of its first owned cell.
    """

    pixels: PixelRange
    cells: CellRange

    @property
    def first_local_cell(self) -> int:
        return self.cells.start - self.pixels.start // STRIDE


@dataclass(frozen=True, slots=True)
class SubTile:
    """A 2-D sub-tile: rows and cols, each an `AxisTile`."""

    row: AxisTile
    col: AxisTile

    @property
    def n_input_pixels(self) -> int:
        return len(self.row.pixels) * len(self.col.pixels)


def n_cells(n_pixels: int) -> int:
    """Output cells along an axis of `n_pixels`: ⌊⌊⌊n/3⌋/3⌋/3⌋ − 6, never negative."""
    return max(0, ((n_pixels // 3) // 3) // 3 - _TAIL_CELLS)


def chip_window(cell: int) -> PixelRange:
    """Input pixels of the 201-px training chip that cell `cell` stands for."""
    start = STRIDE * cell
    return PixelRange(start, start + CHIP)


def centre_pixel(cell: int) -> int:
    """The chip's centre pixel: 27·cell + 100."""
    return STRIDE * cell + CENTRE_OFFSET


def receptive_field(cell: int) -> PixelRange:
    """Every input pixel that can change cell `cell`'s output (215 px)."""
    start = STRIDE * cell - RF_BEFORE
    return PixelRange(start, start + RECEPTIVE_FIELD)


def patch_window(cell: int) -> PixelRange:
    """The impact classifier's 21-px patch centred on the cell's centre pixel."""
    start = centre_pixel(cell) - PATCH // 2
    return PixelRange(start, start + PATCH)


def axis_tile(cells: CellRange, n_pixels: int) -> AxisTile:
    """The input pixels needed to compute `cells` exactly along an axis of `n_pixels`."""
    total = n_cells(n_pixels)
    if not 0 <= cells.start < cells.stop <= total:
        raise ValueError(f"cells {cells} outside 0..{total} for an axis of {n_pixels} px")
    start = STRIDE * max(0, cells.start - HALO_BEFORE_UNITS)
    stop = min(n_pixels, STRIDE * (cells.stop + HALO_AFTER_UNITS - 1))
    return AxisTile(PixelRange(start, stop), cells)


def split_axis(n_pixels: int, max_cells: int) -> list[AxisTile]:
    """Split an axis into as few, near-equal tiles of at most `max_cells` cells as possible."""
    total = n_cells(n_pixels)
    if total == 0:
        return []
    if max_cells < 1:
        raise ValueError("max_cells must be at least 1")
    n_tiles = math.ceil(total / max_cells)
    bounds = [round(k * total / n_tiles) for k in range(n_tiles + 1)]
    return [axis_tile(CellRange(a, b), n_pixels) for a, b in zip(bounds, bounds[1:])]


def max_cells_for_pixels(max_tile_pixels: int) -> int:
    """Most cells per axis of a square tile whose input stays within `max_tile_pixels`."""
    side = math.isqrt(max(0, max_tile_pixels))
    return max(1, side // STRIDE - (HALO_BEFORE_UNITS + HALO_AFTER_UNITS - 1))


def plan_subtiles(height: int, width: int, max_tile_pixels: int | None) -> list[SubTile]:
    """Sub-tiles that cover every output cell of an (height, width) array exactly once.

    With `max_tile_pixels=None` the whole array is one tile.
    """
    if max_tile_pixels is None:
        cells = max(n_cells(height), n_cells(width), 1)
    else:
        cells = max_cells_for_pixels(max_tile_pixels)
    rows = split_axis(height, cells)
    cols = split_axis(width, cells)
    return [SubTile(r, c) for r in rows for c in cols]


def halo_overhead(tiles: list[SubTile], height: int, width: int) -> float:
    """Input pixels pushed through the network ÷ array pixels."""
    return sum(t.n_input_pixels for t in tiles) / float(height * width)
