"""Running the networks on arrays: discovery cells, impact patches, and the memory they take.

The tile loop (`tiles`) calls these on one sub-tile at a time; everything here is pure
array work around a `backends.Network`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..models.networks import MINE_INDEX
from . import geometry
from .backends import Network

#: bytes the discovery network itself holds per input pixel on CPU beyond its float32 input
#: (the first layer's 32 float32 channels dominate), per backend; measured by
#: `minescan bench memory` (docs/BENCHMARKS.md) and rounded up ~5 %
NETWORK_BYTES_PER_PIXEL = {"onnxruntime": 185, "openvino": 280, "tensorflow": 290}
#: what the whole tile loop took per input pixel beyond the sum of its parts (threads'
#: transient copies, allocator slack): ≈ 430 B/px measured against 367 modelled on 4096²
#: (budget 900 MiB) and 9216² (2800 MiB) scans with onnxruntime (docs/BENCHMARKS.md)
LOOP_SLACK_BYTES_PER_PIXEL = 64


#: share of the free device memory a tile may take (cuDNN workspaces take some of the rest)
GPU_MEMORY_FRACTION = 0.7


def bytes_per_input_pixel(n_bands: int, backend: str) -> int:
    """Working-set bytes per input pixel of the tile loop.

    The network's own, plus two sub-tiles in flight (the one in the network and the next
    one being read): each a raw uint16 copy, a normalised float32 copy and a nodata mask;
    the nodata test's one-byte-per-band temporary; GDAL's block cache, sized to one raw
    sub-tile (`scanner.gdal_cache_bytes`); and the loop's measured slack.
    """
    in_flight = n_bands * (2 + 4) + 1
    return NETWORK_BYTES_PER_PIXEL[backend] + 2 * in_flight + n_bands + 2 * n_bands + LOOP_SLACK_BYTES_PER_PIXEL


def max_tile_pixels_for_budget(
    budget_bytes: int, n_bands: int, backend: str, gpu_free_bytes: int | None = None
) -> int:
    """Largest tile (input pixels) whose working set fits `budget_bytes` of host memory and,
    on a GPU, `GPU_MEMORY_FRACTION` of the device's free memory (the network lives there)."""
    if gpu_free_bytes is None:
        return max(geometry.CHIP * geometry.CHIP, budget_bytes // bytes_per_input_pixel(n_bands, backend))
    host = budget_bytes // (bytes_per_input_pixel(n_bands, backend) - NETWORK_BYTES_PER_PIXEL[backend])
    # on the device: the float32 input and TensorFlow's CPU figure, until `make bench-gpu` measures it
    device = int(gpu_free_bytes * GPU_MEMORY_FRACTION) // (NETWORK_BYTES_PER_PIXEL["tensorflow"] + 4 * n_bands)
    return max(geometry.CHIP * geometry.CHIP, min(host, device))


def discovery_cells(network: Network, image: np.ndarray, *, channels_first: bool = False) -> np.ndarray:
    """p(mine) per output cell of one normalised (H, W, B) float32 array, or (B, H, W) with
    `channels_first`, whole-array."""
    return network(image[None], channels_first=channels_first)[0, :, :, MINE_INDEX]


def owned_cells(tile_output: np.ndarray, tile: geometry.SubTile) -> np.ndarray:
    """The part of a tile's output grid that the tile owns."""
    r0, c0 = tile.row.first_local_cell, tile.col.first_local_cell
    return tile_output[r0 : r0 + len(tile.row.cells), c0 : c0 + len(tile.col.cells)]


def classify_patches(network: Network, patches: np.ndarray, n_classes: int, batch_size: int = 1024) -> np.ndarray:
    """Softmax rows (n, n_classes) of the impact network over normalised (n, 21, 21, B) patches."""
    if len(patches) == 0:
        return np.zeros((0, n_classes), np.float32)
    return np.concatenate([network(batch) for batch in _batches(patches, batch_size)]).astype(np.float32, copy=False)


def _batches(array: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(array), size):
        yield array[start : start + size]


def extract_patches(
    window: np.ndarray,
    centres: np.ndarray,
    *,
    window_origin: tuple[int, int],
    scene_shape: tuple[int, int],
    size: int = geometry.PATCH,
) -> np.ndarray:
    """Cut (size × size) patches centred on scene pixels from a window of the scene.

    `window` is (h, w, B) holding scene rows/cols from `window_origin`; `centres` is (n, 2)
    scene (row, col). Each patch comes from real neighbouring data; only where a patch runs
    over the true scene edge is it completed by reflection (never by shrinking the patch).
    A patch that leaves the window but not the scene is a caller bug and raises.
    One gather for all patches: a scene has tens of thousands of candidates.
    """
    centres = np.asarray(centres, dtype=np.int64).reshape(-1, 2)
    offsets = np.arange(size) - size // 2
    rows = _reflect_index(centres[:, :1] + offsets, scene_shape[0]) - window_origin[0]
    cols = _reflect_index(centres[:, 1:] + offsets, scene_shape[1]) - window_origin[1]
    outside = (rows.min(1) < 0) | (rows.max(1) >= window.shape[0]) | (cols.min(1) < 0) | (cols.max(1) >= window.shape[1])
    if outside.any():
        row, col = centres[np.argmax(outside)]
        raise ValueError(f"patch at scene pixel ({row}, {col}) is not inside the window read")
    return window[rows[:, :, None], cols[:, None, :]]


def _reflect_index(index: np.ndarray, n: int) -> np.ndarray:
    """numpy 'reflect' mode (edge pixel not repeated) for indices that run past [0, n)."""
    period = 2 * (n - 1)
    index = np.abs(index) % period if period else np.zeros_like(index)
    return np.where(index >= n, period - index, index)
