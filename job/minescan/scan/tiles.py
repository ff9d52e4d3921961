"""The tile loop: one sub-tile at a time through both networks, with the stages overlapped.

Every scan and every test of seamless inference runs `run_tiles`. One sub-tile goes
through three steps, each a function of a frozen `TileContext` that returns its result:

    prepare   raw window → nodata mask + normalised float32 input    (reader thread)
    discover  discovery network → owned cells, candidates, patches    (calling thread)
    classify  impact network on the candidates' patches               (impact thread)

The reader thread reads and normalises the next sub-tile (GDAL decodes while numpy and
the network run; both release the GIL) and the impact thread classifies the previous
tile's patches, so the discovery network is never kept waiting. At most two sub-tiles are
in memory at once, which `inference.bytes_per_input_pixel` accounts for.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..models.card import Normalization
from . import geometry
from .backends import Network
from .inference import classify_patches, discovery_cells, extract_patches, owned_cells
from .scene import valid_mask


@dataclass(frozen=True)
class TileContext:
    """What every sub-tile of one scan shares."""

    scene_shape: tuple[int, int]
    #: per band, the value that marks nodata (None: none declared)
    nodata: tuple[float | None, ...]
    discovery: Network
    discovery_normalization: Normalization
    impact: Network
    impact_normalization: Normalization
    n_classes: int
    #: p(mine) at or above which a usable cell goes to the impact network (> 1: never)
    threshold: float
    max_nodata_fraction: float
    impact_batch_size: int


@dataclass(frozen=True)
class Candidates:
    """Cells at or above the threshold, with their impact softmax rows."""

    cell_row: np.ndarray
    cell_col: np.ndarray
    pixel_row: np.ndarray
    pixel_col: np.ndarray
    p_mine: np.ndarray
    impact: np.ndarray  # (n, n_classes) float32

    @classmethod
    def concat(cls, parts: Iterable["Candidates"], n_classes: int) -> "Candidates":
        parts = list(parts)
        if not parts:
            empty = np.zeros(0, np.int64)
            return cls(empty, empty, empty, empty, np.zeros(0, np.float32), np.zeros((0, n_classes), np.float32))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))


@dataclass(frozen=True)
class TileResult:
    """What one sub-tile produced: its owned cells (NaN where unusable) and candidates."""

    tile: geometry.SubTile
    p_mine: np.ndarray
    n_valid: int
    candidates: Candidates
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Prepared:
    tile: geometry.SubTile
    raw: np.ndarray  # (B, h, w) as read
    valid: np.ndarray  # (h, w) bool
    x: np.ndarray | None  # (h, w, B) normalised float32; None when the tile is all nodata
    timings: dict[str, float]


@dataclass(frozen=True)
class _Discovered:
    tile: geometry.SubTile
    p_mine: np.ndarray
    n_valid: int
    hits: np.ndarray  # (n, 2) owned-cell indices at or above the threshold
    centres: np.ndarray  # (n, 2) scene (row, col) of the hits' chip centres
    patches: np.ndarray  # (n, 21, 21, B) raw; classify normalises them
    timings: dict[str, float]


def prepare(
    ctx: TileContext, tile: geometry.SubTile, raw: np.ndarray, read_s: float = 0.0, buffer: np.ndarray | None = None
) -> _Prepared:
    """Nodata mask and normalised network input of one raw (B, h, w) window; the input is
    written into the flat float32 `buffer` when one is given (no fresh pages per tile)."""
    start = time.perf_counter()
    valid = valid_mask(raw, ctx.nodata)
    x = None
    if valid.any():
        n_bands, height, width = raw.shape
        out = None if buffer is None else buffer[: height * width * n_bands].reshape(height, width, n_bands)
        x = ctx.discovery_normalization.apply(np.moveaxis(raw, 0, -1), out=out)
        if not valid.all():
            x[~valid] = 0.0  # nodata enters the network as the training mean
    return _Prepared(tile, raw, valid, x, {"read": read_s, "normalise": time.perf_counter() - start})


def discover(ctx: TileContext, prepared: _Prepared) -> _Discovered:
    """Run the discovery network on one prepared sub-tile; cut the candidates' patches."""
    tile, timings = prepared.tile, dict(prepared.timings)
    n_valid = int(prepared.valid.sum())
    if prepared.x is None:  # all nodata: the cells stay NaN and the network is not run
        empty = np.full((len(tile.row.cells), len(tile.col.cells)), np.nan, np.float32)
        no_patches = np.zeros((0, geometry.PATCH, geometry.PATCH, prepared.raw.shape[0]), prepared.raw.dtype)
        no_hits = np.zeros((0, 2), np.int64)
        return _Discovered(tile, empty, 0, no_hits, _centre_pixels(tile, no_hits), no_patches, timings)
    start = time.perf_counter()
    p = owned_cells(discovery_cells(ctx.discovery, prepared.x), tile)
    timings["discovery"] = time.perf_counter() - start
    start = time.perf_counter()
    usable = _usable_cells(prepared.valid, tile, ctx.max_nodata_fraction)
    p = np.where(usable, p, np.nan).astype(np.float32, copy=False)
    hits = np.argwhere(p >= ctx.threshold)
    centres = _centre_pixels(tile, hits)
    patches = extract_patches(
        np.moveaxis(prepared.raw, 0, -1),
        centres,
        window_origin=(tile.row.pixels.start, tile.col.pixels.start),
        scene_shape=ctx.scene_shape,
    )
    timings["patches"] = time.perf_counter() - start
    return _Discovered(tile, p, n_valid, hits, centres, patches, timings)


def classify(ctx: TileContext, found: _Discovered) -> TileResult:
    """Classify one sub-tile's candidate patches with the impact network."""
    tile, timings = found.tile, dict(found.timings)
    start = time.perf_counter()
    scores = classify_patches(
        ctx.impact, ctx.impact_normalization.apply(found.patches), ctx.n_classes, ctx.impact_batch_size
    )
    timings["impact"] = time.perf_counter() - start
    candidates = Candidates(
        cell_row=found.hits[:, 0] + tile.row.cells.start,
        cell_col=found.hits[:, 1] + tile.col.cells.start,
        pixel_row=found.centres[:, 0],
        pixel_col=found.centres[:, 1],
        p_mine=found.p_mine[found.hits[:, 0], found.hits[:, 1]],
        impact=scores,
    )
    return TileResult(tile, found.p_mine, found.n_valid, candidates, timings)


def scan_tile(ctx: TileContext, tile: geometry.SubTile, raw: np.ndarray) -> TileResult:
    """The whole per-tile step in one call: what `run_tiles` does, without the overlap."""
    return classify(ctx, discover(ctx, prepare(ctx, tile, raw)))


def run_tiles(
    ctx: TileContext,
    tiles: list[geometry.SubTile],
    read: Callable[[geometry.SubTile], np.ndarray],
) -> Iterator[TileResult]:
    """`scan_tile` over every sub-tile, in order, with reading and classification overlapped.

    `read(tile)` returns the raw (B, h, w) window of `tile.row.pixels` × `tile.col.pixels`;
    it runs on the reader thread. An error in any step is raised here, in the caller's thread.
    """

    # Two input buffers, alternating: tile k+1 is prepared into one while the network reads
    # tile k from the other, and tile k-1 (the last user of k+1's buffer) is done by then.
    largest = max((t.n_input_pixels for t in tiles), default=0)
    n_bands = len(ctx.nodata)
    buffers = [np.empty(largest * n_bands, np.float32) for _ in range(2)] if largest else []

    def load(index: int, tile: geometry.SubTile) -> _Prepared:
        start = time.perf_counter()
        raw = read(tile)
        return prepare(ctx, tile, raw, time.perf_counter() - start, buffers[index % 2])

    reader = ThreadPoolExecutor(1, thread_name_prefix="minescan-read")
    classifier = ThreadPoolExecutor(1, thread_name_prefix="minescan-impact")
    try:
        upcoming = enumerate(tiles)
        next_read = _submit_next(reader, load, upcoming)
        classified: deque[Future[TileResult]] = deque()
        while next_read is not None:
            prepared = next_read.result()
            next_read = _submit_next(reader, load, upcoming)
            found = discover(ctx, prepared)
            del prepared  # free this tile's input before the next one is read
            classified.append(classifier.submit(classify, ctx, found))
            while classified and classified[0].done():
                yield classified.popleft().result()
        while classified:
            yield classified.popleft().result()
    finally:
        reader.shutdown(cancel_futures=True)
        classifier.shutdown(cancel_futures=True)


def _submit_next(pool: ThreadPoolExecutor, load, upcoming: Iterator[tuple[int, geometry.SubTile]]) -> Future | None:
    item = next(upcoming, None)
    return None if item is None else pool.submit(load, *item)


def _centre_pixels(tile: geometry.SubTile, hits: np.ndarray) -> np.ndarray:
    """(n, 2) scene (row, col) of the chip centres of owned-cell indices `hits`."""
    return np.stack([geometry.centre_pixel(hits[:, 0] + tile.row.cells.start),
                     geometry.centre_pixel(hits[:, 1] + tile.col.cells.start)], axis=1)


def _usable_cells(valid: np.ndarray, tile: geometry.SubTile, max_nodata_fraction: float) -> np.ndarray:
    """Cells owned by `tile` that may produce detections.

    A cell is unusable when its centre 21×21 patch touches nodata (nothing there to
    classify) or when more than `max_nodata_fraction` of its 201-px chip is nodata.
    """
    # a summed-area table built in place, int32 (a sub-tile has far fewer than 2³¹ pixels):
    # four bytes per pixel instead of the 32 that int64 copies and two cumsums would take
    sat = np.zeros((valid.shape[0] + 1, valid.shape[1] + 1), np.int32)
    good = sat[1:, 1:]
    good[...] = valid
    np.cumsum(good, axis=0, out=good)
    np.cumsum(good, axis=1, out=good)

    def box_sums(size: int, offset: int) -> np.ndarray:
        """Nodata pixels in each cell's box; pixels past the scene edge (where the last
        cells' chips run, zero-padded by the network) count as nodata."""
        r = geometry.STRIDE * np.arange(tile.row.cells.start, tile.row.cells.stop) + offset
        c = geometry.STRIDE * np.arange(tile.col.cells.start, tile.col.cells.stop) + offset
        r = r - tile.row.pixels.start
        c = c - tile.col.pixels.start
        r0, r1 = np.clip(r, 0, good.shape[0])[:, None], np.clip(r + size, 0, good.shape[0])[:, None]
        c0, c1 = np.clip(c, 0, good.shape[1])[None, :], np.clip(c + size, 0, good.shape[1])[None, :]
        return size * size - (sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0])

    chip_bad = box_sums(geometry.CHIP, 0)
    patch_bad = box_sums(geometry.PATCH, geometry.CENTRE_OFFSET - geometry.PATCH // 2)
    return (patch_bad == 0) & (chip_bad <= max_nodata_fraction * geometry.CHIP * geometry.CHIP)
