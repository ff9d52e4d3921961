"""`make bench-series`: the chunked filters over a synthetic 20 × 10,000 × 10,000 class cube.

The cube is synthesised window by window (never whole in memory; cached in the output
folder and labelled synthetic): salt-and-pepper mining noise, mines that open in some year
and stay, and cloud gaps of no data. The filter then runs in a child process, the same
`minescan series filter` a user runs, so its peak RSS (its own VmHWM, read as it exits; Linux only) is measured alone.

The stated memory bound: the interpreter with numpy, scipy, zarr and dask.distributed
(`BASE_BYTES`) plus, for every thread, one window's working set: its years × (chunk + 2 ×
halo)² values at `BYTES_PER_VALUE` (one window's filters peak at 13.4 bytes per value under
tracemalloc: the block, the gap-filled copy, the int16 year mask and the filters' copies),
plus the zarr chunks a window read decodes (`CHUNK_READS` chunks of all years). It does not
depend on the cube's size: that is what streaming means here.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..outputs._atomic import atomic_dir
from .chunked import spatial_halo
from .cube_io import (
    VARIABLE,
    CubeGrid,
    Window,
    chunk_windows,
    create_class_cube,
    open_class_cube,
    write_window,
)
from .filters import MIN_PATCH_PIXELS, MINING, NODATA, NOT_MINING

BENCH_SEED = 1985
BASE_BYTES = 512 * 2**20
BYTES_PER_VALUE = 16
#: a window plus its halo overlaps at most 3 × 3 chunks of the input
CHUNK_READS = 9


# Runs `minescan ARGS` and writes the process's VmHWM (peak RSS of its own memory since exec,
# in KiB) to a file at exit. ru_maxrss cannot be used: Linux folds the parent's RSS at fork
# into the child's ru_maxrss when the child execs, so a benchmark started from a large
# process (a test session) would report that process's size.
_REPORT_PEAK = """
import atexit, sys

def _report_peak(path=sys.argv[1]):
    with open("/proc/self/status") as status, open(path, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])

atexit.register(_report_peak)
from minescan.cli.main import main
main(sys.argv[2:])
"""


def memory_bound_bytes(years: int, chunk: int, threads: int) -> int:
    """The peak RSS the chunked filter must stay under, whatever the cube's (y, x) size."""
    window = years * (chunk + 2 * spatial_halo(MIN_PATCH_PIXELS)) ** 2
    return BASE_BYTES + threads * (BYTES_PER_VALUE * window + CHUNK_READS * years * chunk**2)


def synthetic_window(window: Window, years: int, seed: int) -> np.ndarray:
    """One window of the benchmark cube; its pixels depend only on (seed, window)."""
    rng = np.random.default_rng([seed, window.row_off, window.col_off])
    shape = (years, window.height, window.width)
    cube = np.where(rng.random(shape, dtype=np.float32) < 0.01, MINING, NOT_MINING).astype(np.uint8)
    for _ in range(3):  # mines that open in some year and stay open
        top, left = rng.integers(0, window.height), rng.integers(0, window.width)
        size = rng.integers(10, 80, size=2)
        cube[rng.integers(0, years):, top:top + size[0], left:left + size[1]] = MINING
    for year in np.flatnonzero(rng.random(years) < 0.3):  # a cloud gap in some years
        top, left = rng.integers(0, window.height), rng.integers(0, window.width)
        size = rng.integers(50, 200, size=2)
        cube[year, top:top + size[0], left:left + size[1]] = NODATA
    return cube


def synthetic_class_cube(path: Path, size: int, years: int, chunk: int, seed: int = BENCH_SEED) -> CubeGrid:
    """Write the benchmark's synthetic class cube at `path`, window by window."""
    from affine import Affine

    grid = CubeGrid(years=tuple(range(2000, 2000 + years)), height=size, width=size,
                    transform=Affine(0.00025, 0, -55.0, 0, -0.00025, -5.0), crs="EPSG:4326")
    attrs = {"synthetic": True, "source": f"minescan series bench-filters, seed {seed}"}
    with atomic_dir(path) as tmp:
        create_class_cube(tmp, grid, attrs=attrs, chunk=chunk, with_year_mask=False)
        for window in chunk_windows(grid, chunk):
            write_window(tmp, window, {VARIABLE: synthetic_window(window, years, seed)})
    return grid


def run_filter_bench(out: str | Path, size: int = 10_000, years: int = 20, chunk: int = 512,
                     threads: int | None = None) -> dict:
    """Synthesise (once) and filter a years × size × size cube; write bench-series.json; return the figures."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    threads = threads or os.cpu_count() or 1
    cube = out / f"classes_{years}x{size}_c{chunk}.zarr"
    synth_s = None
    if not cube.exists():
        start = time.perf_counter()
        synthetic_class_cube(cube, size, years, chunk)
        synth_s = round(time.perf_counter() - start, 1)
    filtered = out / "filtered.zarr"
    args = ["--log-format", "json", "series", "filter", str(cube), "--out", str(filtered), "--overwrite",
            "--chunk", str(chunk), "--threads", str(threads)]
    cmd = [sys.executable, "-m", "minescan", *args]
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "vmhwm_kib"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _REPORT_PEAK, str(peak_file), *args],
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark filter failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        peak = int(peak_file.read_text()) * 1024
    bound = memory_bound_bytes(years, chunk, threads)
    values = years * size * size
    figures = {
        "command": f"make bench-series  # = minescan series bench-filters --size {size} --years {years} "
                   f"--chunk {chunk} --threads {threads} --out {shlex.quote(str(out))}",
        "filter_command": " ".join(shlex.quote(c) for c in cmd),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_at_start": [round(x, 2) for x in load]},
        "cube": {"years": years, "size_px": size, "chunk": chunk, "synthetic": True, "synthesis_s": synth_s},
        "windows": len(list(chunk_windows(open_class_cube(cube).grid, chunk))),
        "threads": threads,
        "filter_wall_s": round(wall, 1),
        "million_values_per_s": round(values / wall / 1e6, 2),
        "peak_rss_mib": round(peak / 2**20, 1),
        "memory_bound_mib": round(bound / 2**20, 1),
        "within_bound": peak <= bound,
        "changed": open_class_cube(filtered).attrs["filters"]["changed"],
    }
    (out / "bench-series.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def format_filter_bench(f: dict) -> str:
    c = f["cube"]
    return "\n".join([
        (f"{c['years']} × {c['size_px']}² synthetic class cube, {f['windows']} windows of {c['chunk']}², "
         f"{f['threads']} threads: filtered in {f['filter_wall_s']} s ({f['million_values_per_s']} M values/s)"),
        (f"  peak RSS {f['peak_rss_mib']} MiB, bound {f['memory_bound_mib']} MiB: "
         + ("within" if f["within_bound"] else "EXCEEDED")),
        f"  load average at start {f['machine']['load_average_at_start']}; values changed {f['changed']}",
    ])
