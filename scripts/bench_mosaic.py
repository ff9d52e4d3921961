"""Peak memory of the national p(mine) mosaic (docs/BENCHMARKS.md).

Writes N × N synthetic scene zarr stores (343² cells, 341 apart: the national grid's
geometry) under ROOT once, then builds the mosaic COG + VRT and prints the mosaic's size,
the time and the process's peak RSS before and after (`ru_maxrss`).

    python scripts/bench_mosaic.py bench-out/mosaic 24
"""
import resource, sys, time
from pathlib import Path
import numpy as np
from affine import Affine
from minescan.outputs import write_probability_zarr, scene_tile, build_mosaic
root = Path(sys.argv[1]); n = int(sys.argv[2]); cells, step = 343, 341
origin = Affine(0.002425, 0, -60, 0, -0.002425, 0)
tiles = []
rng = np.random.default_rng(0)
for r in range(n):
    for c in range(n):
        sid = f"r{r:04d}c{c:04d}"
        z = root / "scenes" / sid / "probability.zarr"
        if not z.exists():
            write_probability_zarr(z, rng.random((cells, cells), dtype=np.float32), cell_transform=origin @ Affine.translation(c * step, r * step), crs="EPSG:4326", attrs={})
        tiles.append(scene_tile(sid, z, f"../scenes/{sid}/probability.tif", offset=(r * step, c * step), shape=(cells, cells), owned_offset=1, owned_cells=step))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter(); m = build_mosaic(root / "national", tiles)
print({"scenes": n * n, "mosaic_cells": [m.window.rows, m.window.cols], "float32_MiB": round(m.window.rows * m.window.cols * 4 / 2**20), "seconds": round(time.perf_counter() - t, 1), "peak_rss_MiB_before": round(base), "peak_rss_MiB_after": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})
