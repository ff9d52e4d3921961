"""Seamless prediction windows: overlapping windows whose centres tile a scene exactly.

The MapBiomas U-Net is run on 512 × 512 windows stepped by 256, each keeping only its
central 256 × 256 block (MapBiomas mining ATBD, Col. 9, §3): the kept block is 128 px from
every window edge, beyond the reach of the zero padding the network's convolutions add at a
window's border, so adjacent blocks meet without a seam and the mosaic equals what one
window over the whole scene would give. The scene is padded by the margin (mirrored at its
edges) and up to whole steps; windows start on multiples of 16 px in the padded scene, so
the U-Net's four 2 × 2 poolings fall on the same pixel grid in every window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the method's prediction window and step (ATBD): the kept centre is `STEP` square
WINDOW = 512
STEP = 256
#: the U-Net pools four times: window origins and sizes are multiples of this
ALIGN = 16


@dataclass(frozen=True, slots=True)
class PredictionWindow:
    """One window, in padded-scene pixels, and the block of the scene it answers for."""

    row: int  # window origin in the padded scene
    col: int
    out_row: int  # kept block's origin in the scene
    out_col: int
    out_rows: int  # kept block's size (smaller at the scene's far edges)
    out_cols: int


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """How to pad a rows × cols scene and which windows to run."""

    rows: int
    cols: int
    window: int
    step: int
    windows: tuple[PredictionWindow, ...]

    @property
    def margin(self) -> int:
        return (self.window - self.step) // 2

    @property
    def padded_shape(self) -> tuple[int, int]:
        """Rows and columns of the padded scene: margin, whole steps, margin."""
        return (_whole_steps(self.rows, self.step) + 2 * self.margin,
                _whole_steps(self.cols, self.step) + 2 * self.margin)


def _whole_steps(n: int, step: int) -> int:
    return -(-n // step) * step


def check_window(window: int, step: int) -> None:
    """`ValueError` unless the window's centre tiles seamlessly on the U-Net's grid."""
    if step <= 0 or window < step or (window - step) % (2 * ALIGN) or step % ALIGN:
        raise ValueError(
            f"window {window} and step {step} must be multiples of {ALIGN} with an even margin "
            f"that is itself a multiple of {ALIGN} (e.g. the method's {WINDOW}/{STEP})"
        )


def plan_windows(rows: int, cols: int, window: int = WINDOW, step: int = STEP) -> WindowPlan:
    """The windows whose kept centres cover every pixel of a rows × cols scene exactly once."""
    check_window(window, step)
    if rows < 1 or cols < 1:
        raise ValueError(f"scene of {rows}×{cols} px has no pixel")
    windows = tuple(
        PredictionWindow(r, c, r, c, min(step, rows - r), min(step, cols - c))
        for r in range(0, rows, step)
        for c in range(0, cols, step)
    )
    return WindowPlan(rows, cols, window, step, windows)


def pad_scene(x: np.ndarray, plan: WindowPlan) -> np.ndarray:
    """(rows, cols, bands) → the padded scene: mirrored by the margin, then to whole steps."""
    m = plan.margin
    pr, pc = plan.padded_shape
    widths = ((m, pr - m - plan.rows), (m, pc - m - plan.cols), (0, 0))
    # numpy's reflect repeats the mirror when a scene is narrower than the margin
    return np.pad(x, widths, mode="reflect") if min(plan.rows, plan.cols) > 1 else np.pad(x, widths, mode="edge")
