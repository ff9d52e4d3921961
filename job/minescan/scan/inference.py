"""Running the networks: seamless sub-tiled discovery, and impact classification of patches.

`discovery_probabilities` gives the same cells as one whole-array forward pass, within float
rounding, whatever the sub-tile size: tiles start on the 27-px grid and carry the halo
derived in `geometry`, and every cell is owned by exactly one tile.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..models.networks import MINE_INDEX
from . import geometry

if TYPE_CHECKING:
    import keras

#: float32 bytes held per input pixel by the discovery network on CPU, measured in
#: `make bench` (input + conv1 output + its ReLU at 32 channels dominate), with headroom
BYTES_PER_PIXEL_BASE = 4 * (2 * 32 + 8)


def bytes_per_input_pixel(n_bands: int) -> int:
    """Working-set bytes per input pixel of one discovery forward pass (raw + normalised input)."""
    return BYTES_PER_PIXEL_BASE + n_bands * (2 + 4 + 4)


def max_tile_pixels_for_budget(budget_bytes: int, n_bands: int) -> int:
    """Largest tile (input pixels) whose working set fits `budget_bytes`."""
    return max(geometry.CHIP * geometry.CHIP, budget_bytes // bytes_per_input_pixel(n_bands))


class DiscoveryRunner:
    """Calls the discovery network on arrays of any size without retracing per shape."""

    def __init__(self, model: "keras.Model") -> None:
        import tensorflow as tf

        self.model = model
        n_bands = model.input_shape[-1]
        spec = tf.TensorSpec(shape=(1, None, None, n_bands), dtype=tf.float32)
        # A tf.function lets grappler fuse conv + bias + relu, which roughly halves the peak
        # memory of the first layer on CPU compared with eager execution.
        self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """p(mine) per cell for one normalised (H, W, B) float32 array."""
        out = self._fn(np.ascontiguousarray(image[None], dtype=np.float32))
        return out.numpy()[0, :, :, MINE_INDEX]


def _runner(model) -> DiscoveryRunner:
    return model if isinstance(model, DiscoveryRunner) else DiscoveryRunner(model)


def discovery_probabilities(
    model: "keras.Model | DiscoveryRunner",
    image: np.ndarray,
    max_pixels: int | None = None,
) -> np.ndarray:
    """p(mine) for every output cell of a normalised (H, W, B) float32 array.

    Returns shape (n_cells(H), n_cells(W)). With `max_pixels`, the work is split into
    sub-tiles of at most that many input pixels; the result equals whole-array inference.
    """
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, B) array, got shape {image.shape}")
    height, width, _ = image.shape
    runner = _runner(model)
    out = np.full((geometry.n_cells(height), geometry.n_cells(width)), np.nan, np.float32)
    for tile in geometry.plan_subtiles(height, width, max_pixels):
        rows, cols = tile.row.pixels, tile.col.pixels
        p = runner(image[rows.start : rows.stop, cols.start : cols.stop])
        out[tile.row.cells.start : tile.row.cells.stop, tile.col.cells.start : tile.col.cells.stop] = (
            owned_cells(p, tile)
        )
    return out


def owned_cells(tile_output: np.ndarray, tile: geometry.SubTile) -> np.ndarray:
    """The part of a tile's output grid that the tile owns."""
    r0, c0 = tile.row.first_local_cell, tile.col.first_local_cell
    return tile_output[r0 : r0 + len(tile.row.cells), c0 : c0 + len(tile.col.cells)]


@dataclass(frozen=True, slots=True)
class ImpactScores:
    """Softmax output of the impact network, one row per patch, class order of the model."""

    probabilities: np.ndarray  # (n, n_classes) float32
    class_names: tuple[str, ...]


def classify_patches(
    model: "keras.Model", patches: np.ndarray, class_names: tuple[str, ...], batch_size: int = 1024
) -> ImpactScores:
    """Run the impact network on normalised (n, 21, 21, B) patches in batches."""
    if len(patches) == 0:
        return ImpactScores(np.zeros((0, len(class_names)), np.float32), class_names)
    outs = [
        np.asarray(model(np.ascontiguousarray(batch, dtype=np.float32), training=False))
        for batch in _batches(patches, batch_size)
    ]
    return ImpactScores(np.concatenate(outs).astype(np.float32), class_names)


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
    """
    half = size // 2
    n_bands = window.shape[2]
    out = np.empty((len(centres), size, size, n_bands), dtype=window.dtype)
    scene_h, scene_w = scene_shape
    r_off, c_off = window_origin
    for k, (row, col) in enumerate(np.asarray(centres, dtype=np.int64)):
        rows = _reflect_index(np.arange(row - half, row - half + size), scene_h) - r_off
        cols = _reflect_index(np.arange(col - half, col - half + size), scene_w) - c_off
        if rows.min() < 0 or cols.min() < 0 or rows.max() >= window.shape[0] or cols.max() >= window.shape[1]:
            raise ValueError(f"patch at scene pixel ({row}, {col}) is not inside the window read")
        out[k] = window[np.ix_(rows, cols)]
    return out


def _reflect_index(index: np.ndarray, n: int) -> np.ndarray:
    """numpy 'reflect' mode (edge pixel not repeated) for indices that run past [0, n)."""
    period = 2 * (n - 1)
    index = np.abs(index) % period if period else np.zeros_like(index)
    return np.where(index >= n, period - index, index)
