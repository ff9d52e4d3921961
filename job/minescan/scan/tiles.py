"""The tile loop: one sub-tile at a time through both networks.

Every scan and every test of seamless inference runs `run_tiles`. One sub-tile goes
through three steps, each a function of a frozen `TileContext`:

    prepare   raw window → nodata mask + normalised float32 input    (reader thread)
    discover  discovery network → owned cells, candidates, patches    (calling thread)
    classify  impact network on the candidates' patches               (impact thread)

Classification goes through an `ImpactQueue`, which runs the impact network in batches of
one shape across sub-tiles. With the stages overlapped (machines with more than two
cores), the reader thread reads and normalises the next sub-tile while the network runs
(GDAL and numpy release the GIL) and the impact thread classifies the previous one; on two
cores the steps run one after another, each on both cores (docs/BENCHMARKS.md says why).
The largest sub-tile goes first. At most two sub-tiles are in memory at once, which
`inference.bytes_per_input_pixel` accounts for.
"""

from __future__ import annotations

import os
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
    x: np.ndarray | None  # normalised float32 in the discovery network's layout; None when all nodata
    timings: dict[str, float]
    channels_first: bool = False  # x is (B, h, w), else (h, w, B)


@dataclass(frozen=True)
class _Discovered:
    tile: geometry.SubTile
    p_mine: np.ndarray
    n_valid: int
    hits: np.ndarray  # (n, 2) owned-cell indices at or above the threshold
    centres: np.ndarray  # (n, 2) scene (row, col) of the hits' chip centres
    patches: np.ndarray  # (n, 21, 21, B) raw; classify normalises them
    timings: dict[str, float]


#: bytes of float32 network input prepared at a time: a row block of the raw window, its
#: mask and its input that stays in the core's cache while it is tested, converted and
#: normalised (one visit of each block instead of several passes over hundreds of MB)
PREPARE_BLOCK_BYTES = 2 * 2**20


def prepare(
    ctx: TileContext, tile: geometry.SubTile, raw: np.ndarray, read_s: float = 0.0,
    buffer: np.ndarray | None = None, workers: ThreadPoolExecutor | None = None,
) -> _Prepared:
    """Nodata mask and normalised network input of one raw (B, h, w) window: (h, w, B), or
    (B, h, w) where the discovery network takes channels first. The input is written into
    the flat float32 `buffer` when one is given (no fresh pages per tile). Done in row
    blocks that fit in cache, spread over `workers` when given (numpy releases the GIL);
    the values are those of `Normalization.apply`, bit for bit.
    """
    start = time.perf_counter()
    n_bands, height, width = raw.shape
    planes = ctx.discovery.channels_first
    shape = (n_bands, height, width) if planes else (height, width, n_bands)
    x = np.empty(shape, np.float32) if buffer is None else buffer[: height * width * n_bands].reshape(shape)
    pixels = x.transpose(1, 2, 0) if planes else x  # (h, w, B) either way: one code path below
    valid = np.empty((height, width), bool)
    rows = max(1, PREPARE_BLOCK_BYTES // max(1, width * n_bands * 4))
    blocks = [slice(r, min(r + rows, height)) for r in range(0, height, rows)]
    norm = ctx.discovery_normalization
    mean, std = np.asarray(norm.mean, np.float32), np.asarray(norm.std, np.float32)

    def block(rs: slice) -> bool:
        ok = valid[rs]
        ok[...] = valid_mask(raw[:, rs], ctx.nodata)
        xb = pixels[rs]
        # float32(raw) − mean in one pass (the conversion is exact), then ÷ std: as `apply`
        np.subtract(np.moveaxis(raw[:, rs], 0, -1), mean, out=xb, dtype=np.float32)
        xb /= std
        if not ok.all():
            xb[~ok] = 0.0  # nodata enters the network as the training mean
        return bool(ok.any())

    found = workers.map(block, blocks) if workers is not None else map(block, blocks)
    any_valid = any(list(found))
    return _Prepared(tile, raw, valid, x if any_valid else None,
                     {"read": read_s, "normalise": time.perf_counter() - start}, planes)


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
    p = owned_cells(discovery_cells(ctx.discovery, prepared.x, channels_first=prepared.channels_first), tile)
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
    queue = ImpactQueue(ctx)
    return [*queue.add(found), *queue.flush()][0]


class ImpactQueue:
    """Classifies the candidates of successive sub-tiles in batches of one shape.

    A sub-tile's candidates rarely fill whole batches; classified tile by tile, every
    sub-tile ends in a batch of another size, and a runtime that plans for each new input
    shape (OpenVINO) pays for it every time: 18,193 patches took 1.07 s in batches of
    varying size against 0.95 s in batches of 1,024 (docs/BENCHMARKS.md). Here the
    remainder of one sub-tile waits for the next one's candidates; `flush` classifies the
    last. Results come out in the order the sub-tiles went in. Not thread-safe: the loop
    calls it from one thread.
    """

    def __init__(self, ctx: TileContext) -> None:
        self.ctx = ctx
        self._waiting: deque[tuple[_Discovered, np.ndarray]] = deque()  # (tile, its scores)
        self._patches: deque[np.ndarray] = deque()  # raw patches not yet classified
        self._pending = 0  # rows in `_patches`
        self._fill: deque[tuple[np.ndarray, int]] = deque()  # (scores array, next row) per tile with work left
        self._seconds = 0.0
        self._batch: np.ndarray | None = None  # one float32 batch, reused
        norm = ctx.impact_normalization
        self._mean, self._std = np.asarray(norm.mean, np.float32), np.asarray(norm.std, np.float32)

    def add(self, found: _Discovered) -> list[TileResult]:
        """Queue one sub-tile's candidates; return the sub-tiles now wholly classified."""
        start = time.perf_counter()
        scores = np.empty((len(found.patches), self.ctx.n_classes), np.float32)
        self._waiting.append((found, scores))
        if len(found.patches):
            self._patches.append(found.patches)
            self._pending += len(found.patches)
            self._fill.append((scores, 0))
        while self._pending >= self.ctx.impact_batch_size:
            self._run(self.ctx.impact_batch_size)
        self._seconds += time.perf_counter() - start
        return self._done()

    def flush(self) -> list[TileResult]:
        """Classify what is left; return every sub-tile not yet returned."""
        start = time.perf_counter()
        if self._pending:
            self._run(self._pending)
        self._seconds += time.perf_counter() - start
        return self._done()

    def _run(self, n: int) -> None:
        """One network call on the first `n` queued patches; their scores to their tiles."""
        if self._batch is None:
            self._batch = np.empty((max(n, self.ctx.impact_batch_size), *self._patches[0].shape[1:]), np.float32)
        batch, filled = self._batch[:n], 0
        while filled < n:
            head = self._patches[0]
            take = min(len(head), n - filled)
            _normalise_into(head[:take], batch[filled : filled + take], self._mean, self._std)
            if take == len(head):
                self._patches.popleft()
            else:
                self._patches[0] = head[take:]
            filled += take
        self._pending -= n
        out = classify_patches(self.ctx.impact, batch, self.ctx.n_classes, n)
        row = 0
        while row < n:
            scores, first = self._fill[0]
            take = min(len(scores) - first, n - row)
            scores[first : first + take] = out[row : row + take]
            row += take
            if first + take == len(scores):
                self._fill.popleft()
            else:
                self._fill[0] = (scores, first + take)

    def _done(self) -> list[TileResult]:
        finished = []
        busy = {id(scores) for scores, _ in self._fill}
        while self._waiting and id(self._waiting[0][1]) not in busy:
            found, scores = self._waiting.popleft()
            timings = dict(found.timings)
            # the network time since the last result was returned is booked to this one
            timings["impact"], self._seconds = self._seconds, 0.0
            finished.append(_tile_result(found, scores, timings))
        return finished


#: patches normalised at a time: 64 × 21 × 21 × 12 float32 (1.4 MB) stays in cache
_NORMALISE_PATCHES = 64


def _normalise_into(raw: np.ndarray, out: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
    """`Normalization.apply` of raw patches into `out`, bit for bit, a cache-sized block at a time."""
    for k in range(0, len(raw), _NORMALISE_PATCHES):
        block = out[k : k + _NORMALISE_PATCHES]
        np.subtract(raw[k : k + _NORMALISE_PATCHES], mean, out=block, dtype=np.float32)
        block /= std


def _tile_result(found: _Discovered, scores: np.ndarray, timings: dict[str, float]) -> TileResult:
    tile = found.tile
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
    *,
    overlap: bool | None = None,
) -> Iterator[TileResult]:
    """`scan_tile` over every sub-tile, largest first, with reading and classification
    overlapped when `overlap` (None: `overlap_default()`).

    `read(tile)` returns the raw (B, h, w) window of `tile.row.pixels` × `tile.col.pixels`;
    it runs on the reader thread, and the array it returns may be reused by its reader from
    the call after next on. An error in any step is raised here, in the caller's thread.
    Results come in processing order: the largest sub-tile first, so a runtime that sizes
    its buffers by the largest input seen (OpenVINO) allocates them once, then the rest in
    plan order.
    """
    overlap = overlap_default() if overlap is None else overlap
    tiles = _largest_first(tiles)
    # Two input buffers, alternating: tile k+1 is prepared into one while the network reads
    # tile k from the other, and tile k-1 (the last user of k+1's buffer) is done by then.
    largest = max((t.n_input_pixels for t in tiles), default=0)
    n_bands = len(ctx.nodata)
    buffers = [np.empty(largest * n_bands, np.float32) for _ in range(2)] if largest else []
    workers = ThreadPoolExecutor(PREPARE_THREADS, thread_name_prefix="minescan-prepare")

    def load(index: int, tile: geometry.SubTile) -> _Prepared:
        start = time.perf_counter()
        raw = read(tile)
        return prepare(ctx, tile, raw, time.perf_counter() - start, buffers[index % 2], workers)

    queue = ImpactQueue(ctx)
    if not overlap:
        try:
            for index, tile in enumerate(tiles):
                yield from queue.add(discover(ctx, load(index, tile)))
            yield from queue.flush()
        finally:
            workers.shutdown(cancel_futures=True)
        return
    reader = ThreadPoolExecutor(1, thread_name_prefix="minescan-read")
    # one thread: the queue is called from it alone
    classifier = ThreadPoolExecutor(1, thread_name_prefix="minescan-impact")
    try:
        upcoming = enumerate(tiles)
        next_read = _submit_next(reader, load, upcoming)
        classified: deque[Future[list[TileResult]]] = deque()
        while next_read is not None:
            prepared = next_read.result()
            next_read = _submit_next(reader, load, upcoming)
            found = discover(ctx, prepared)
            del prepared  # free this tile's input before the next one is read
            classified.append(classifier.submit(queue.add, found))
            while classified and classified[0].done():
                yield from classified.popleft().result()
        classified.append(classifier.submit(queue.flush))
        while classified:
            yield from classified.popleft().result()
    finally:
        reader.shutdown(cancel_futures=True)
        classifier.shutdown(cancel_futures=True)
        workers.shutdown(cancel_futures=True)


def usable_cpus() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a pod's
    `limits.cpu`), which `os.cpu_count()` does not see."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


#: threads that prepare a sub-tile's row blocks
PREPARE_THREADS = min(4, usable_cpus())


def overlap_default() -> bool:
    """Overlap the stages only where there are cores to spare: on two cores the reader and
    impact threads take them from the network, which is CPU-bound on both, so overlapping
    saved no wall time and cost the network a third of its speed (docs/BENCHMARKS.md)."""
    return usable_cpus() > 2


def _largest_first(tiles: list[geometry.SubTile]) -> list[geometry.SubTile]:
    """`tiles` with the one of most input pixels moved to the front, the rest in plan order
    (neighbours in a row share halo blocks in GDAL's cache)."""
    if not tiles:
        return []
    first = max(range(len(tiles)), key=lambda i: (len(tiles[i].row.pixels), len(tiles[i].col.pixels)))
    return [tiles[first], *tiles[:first], *tiles[first + 1 :]]


def _submit_next(pool: ThreadPoolExecutor, load, upcoming: Iterator[tuple[int, geometry.SubTile]]) -> Future | None:
    item = next(upcoming, None)
    return None if item is None else pool.submit(load, *item)


def _centre_pixels(tile: geometry.SubTile, hits: np.ndarray) -> np.ndarray:
    """(n, 2) scene (row, col) of the chip centres of owned-cell indices `hits`."""
    return np.stack([geometry.centre_pixel(hits[:, 0] + tile.row.cells.start),
                     geometry.centre_pixel(hits[:, 1] + tile.col.cells.start)], axis=1)


def _usable_cells(
    valid: np.ndarray, tile: geometry.SubTile, max_nodata_fraction: float, *, all_valid: bool | None = None
) -> np.ndarray:
    """Cells owned by `tile` that may produce detections.

    A cell is unusable when its centre 21×21 patch touches nodata (nothing there to
    classify) or when more than `max_nodata_fraction` of its 201-px chip is nodata.
    Where the whole window is valid (`all_valid`, None: test it) a box's count is its area
    inside the window and no summed-area table is built.
    """
    all_valid = bool(valid.all()) if all_valid is None else all_valid
    sat = good = None
    if not all_valid:
        # a summed-area table built in place, int32 (a sub-tile has far fewer than 2³¹
        # pixels): four bytes per pixel instead of the 32 of int64 copies and two cumsums
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
        r0, r1 = np.clip(r, 0, valid.shape[0])[:, None], np.clip(r + size, 0, valid.shape[0])[:, None]
        c0, c1 = np.clip(c, 0, valid.shape[1])[None, :], np.clip(c + size, 0, valid.shape[1])[None, :]
        if sat is None:
            return size * size - (r1 - r0) * (c1 - c0)
        return size * size - (sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0])

    chip_bad = box_sums(geometry.CHIP, 0)
    patch_bad = box_sums(geometry.PATCH, geometry.CENTRE_OFFSET - geometry.PATCH // 2)
    return (patch_bad == 0) & (chip_bad <= max_nodata_fraction * geometry.CHIP * geometry.CHIP)
