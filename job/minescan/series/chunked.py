"""The four filters over a zarr class cube of any size, window by window on a Dask cluster.

Every task filters one (y, x) window of the cube with all its years (the time filters need
the whole series of a pixel) and writes its window of the output store, so memory is bounded
by the number of concurrent tasks times one window, whatever the cube's size; the scheduler
moves only paths, windows and counts, never pixels. This is `dask.array.map_overlap` done
directly on the store: each task reads its window plus a halo straight from zarr instead of
assembling the halo from neighbouring chunks in memory, and writes an aligned region of the
output (the xarray-beam pattern: the template is written once, a retried task rewrites the
same bytes).

Gap-fill, temporal and frequency filters act on each pixel's own series, so any window is
exact for them. The spatial filter asks of each mining pixel whether its 8-connected patch
has at least `min_pixels` (k) pixels; a halo of k − 1 pixels answers that exactly although
patches can be far larger than any halo:

* the patch seen inside window + halo is a subset of the true patch, so a pixel that sees
  k or more pixels there truly has k or more, and one whose true patch is small sees it whole;
* if the true patch has k or more pixels, growing a connected set outward from the pixel one
  neighbour at a time reaches k pixels, each within k − 1 steps (Chebyshev distance) of it,
  so all of them lie inside a window whose halo is k − 1: the pixel sees at least k.

So a pixel keeps its class in the chunked run iff it does in memory; `test_chunked` pins
this on patches that cross chunk borders and shows a halo of k − 2 is not enough.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError, TransientError
from ..log import progress
from ..outputs._atomic import atomic_dir
from .cube_io import (
    CHUNK,
    VARIABLE,
    YEAR_MASK,
    Window,
    chunk_windows,
    create_class_cube,
    open_class_cube,
    update_attrs,
    write_window,
)
from .filters import (
    MIN_MINING_FRACTION,
    MIN_PATCH_PIXELS,
    filter_stages,
)

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

COUNT_NAMES = ("gap_filled", "temporal", "spatial", "frequency")


class SeriesFilterConfig(BaseModel):
    """Settings of the filter stage; saved in the output cube's attributes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_pixels: int = Field(MIN_PATCH_PIXELS, ge=1, description="smallest mining patch kept (ATBD §5.3: 10)")
    min_fraction: float = Field(
        MIN_MINING_FRACTION, ge=0, le=1, description="least share of the years mapped as mining (ATBD §5.4: 0.10)"
    )
    chunk: int = Field(CHUNK, ge=16, le=8192, description="(y, x) edge of each task's window and output chunk")


@dataclass(frozen=True)
class FilterSummary:
    """What a chunked filter run did: values changed per filter, windows, and where it wrote."""

    out: str
    years: tuple[int, ...]
    shape: tuple[int, int, int]
    windows: int
    counts: dict[str, int]


def spatial_halo(min_pixels: int) -> int:
    """The halo that makes the windowed spatial filter exact (see the module docstring)."""
    return max(0, min_pixels - 1)


def filter_window(src: str, dst: str, window: Window, config: SeriesFilterConfig, halo: int) -> dict[str, int]:
    """Filter one window of the cube at `src` into the store at `dst`; the counts it changed."""
    cube = open_class_cube(src)
    outer = window.grown(halo, cube.grid)
    stages, year_mask = filter_stages(cube.read(outer), cube.grid.years, min_pixels=config.min_pixels,
                                      min_fraction=config.min_fraction)
    inner = (slice(None), *window.within(outer))
    # the halo serves the spatial filter; the others work per pixel, so each stage cut to the
    # window equals the whole cube's stage there
    stages = [stage[inner] for stage in stages]
    write_window(dst, window, {VARIABLE: stages[-1], YEAR_MASK: year_mask[inner]})
    return {name: int(np.count_nonzero(a != b)) for name, a, b in zip(COUNT_NAMES, stages, stages[1:])}


def filter_cube(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    config: SeriesFilterConfig | None = None,
    *,
    client: Client | None = None,
    threads: int | None = None,
    overwrite: bool = False,
) -> FilterSummary:
    """Filter the class cube at `src` into a new cube at `dst` (with the year mask), atomically.

    Runs on `client`'s cluster when given (every worker must see both paths: a shared
    volume), else on an in-process cluster of `threads` threads (all cores by default).
    """
    config = config or SeriesFilterConfig()
    cube = open_class_cube(src)
    target = _check_target(Path(src), Path(dst), overwrite)
    windows = list(chunk_windows(cube.grid, config.chunk))
    attrs = {**cube.attrs, "filters": {"config": config.model_dump(),
                                       "method": "MapBiomas mining ATBD, Col. 9, §5"}}
    with atomic_dir(target) as tmp:
        create_class_cube(tmp, cube.grid, attrs=attrs, chunk=config.chunk, with_year_mask=True)
        task = _Task(str(Path(src).resolve()), str(tmp.resolve()), config, spatial_halo(config.min_pixels))
        totals: Counter[str] = Counter({name: 0 for name in COUNT_NAMES})
        for counts in _run(task, windows, client, threads):
            totals.update(counts)
        update_attrs(tmp, {"filters": {**attrs["filters"], "changed": dict(totals)}})
    log.info("filtered class cube", extra={"src": str(src), "out": str(target), "windows": len(windows),
                                           **dict(totals)})
    return FilterSummary(out=str(target), years=cube.grid.years, shape=cube.grid.shape,
                         windows=len(windows), counts=dict(totals))


def _check_target(src: Path, dst: Path, overwrite: bool) -> Path:
    if dst.resolve() == src.resolve():
        raise InputError(f"--out {dst} is the input cube: write the filtered cube to a new path")
    if dst.exists() and not overwrite:
        raise InputError(f"{dst} exists and won't be overwritten without --overwrite")
    if dst.exists():
        open_class_cube(dst)  # only ever replace a cube, never some other directory
    return dst


@dataclass(frozen=True)
class _Task:
    """The per-window work, picklable for remote workers."""

    src: str
    dst: str
    config: SeriesFilterConfig
    halo: int

    def __call__(self, window: Window) -> dict[str, int]:
        return filter_window(self.src, self.dst, window, self.config, self.halo)


def _run(
    task: Callable[[Window], dict[str, int]],
    windows: Sequence[Window],
    client: Client | None,
    threads: int | None,
) -> list[dict[str, int]]:
    from distributed import Client, LocalCluster, as_completed

    own_cluster = None
    if client is None:
        # threads in this process: numpy and scipy release the GIL for the heavy loops
        own_cluster = LocalCluster(processes=False, n_workers=1, threads_per_worker=threads or os.cpu_count(),
                                   dashboard_address=None)
        client = Client(own_cluster, set_as_default=False)
    try:
        futures = client.map(task, windows, pure=False)
        keys = {future.key: window for future, window in zip(futures, windows)}
        results = []
        for future in progress(as_completed(futures, loop=client.loop), len(futures), "filtering windows"):
            try:
                results.append(future.result())
            except Exception as exc:
                client.cancel(futures)
                exc.add_note(f"while filtering window {keys[future.key]}")
                raise
        return results
    finally:
        if own_cluster is not None:
            client.close()
            own_cluster.close()


@contextmanager
def dask_client(
    scheduler: str | None = None, local_cluster: int | None = None, *, timeout: str = "60s"
) -> Iterator[Client | None]:
    """A client of the scheduler at `scheduler` (waiting up to `timeout` for it), or of a new
    LocalCluster of `local_cluster` worker processes, or None (then `filter_cube` runs
    in-process threads); closed on exit."""
    from distributed import Client, LocalCluster

    if scheduler and local_cluster:
        raise InputError("pass either --scheduler or --local-cluster, not both")
    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise TransientError(f"no Dask scheduler answers at {scheduler} ({exc}): is the cluster up?") from None
        with client:
            yield client
    elif local_cluster:
        with LocalCluster(n_workers=local_cluster, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster, set_as_default=False) as client:
            yield client
    else:
        yield None
