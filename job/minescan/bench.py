"""`make bench`: scan a paper-sized synthetic scene and report what it cost.

The scan runs in a child process (the same `minescan scan` a user runs) so its peak RSS
is its own. Beside the discovery network's achieved GFLOP/s the benchmark measures this
machine's float32 matrix-multiply GFLOP/s through the same framework in the same run:
the ratio, not either figure alone, says how well the convolutions use the machine.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

from .batch.layout import ShardLayout
from .scan import geometry
from .scan.config import ScanConfig
from .scan.inference import max_tile_pixels_for_budget

BENCH_SEED = 9216


def discovery_flops(height: int, width: int, n_bands: int) -> float:
    """Multiply-adds ×2 of one discovery forward pass over an (height, width) input."""
    h1, w1 = height // 3, width // 3
    h2, w2 = h1 // 3, w1 // 3
    h3, w3 = h2 // 3, w2 // 3
    ho, wo = max(0, h3 - 6), max(0, w3 - 6)
    return 2.0 * (
        9 * n_bands * 32 * height * width
        + 9 * 32 * 64 * h1 * w1
        + 9 * 64 * 64 * h2 * w2
        + 49 * 64 * 64 * ho * wo
        + 64 * 2 * ho * wo
    )


def matmul_gflops(n: int = 4096, repeats: int = 5) -> float:
    """Best-of float32 matmul throughput through TensorFlow, GFLOP/s."""
    import tensorflow as tf

    a = tf.random.uniform((n, n), dtype=tf.float32, seed=1)
    b = tf.random.uniform((n, n), dtype=tf.float32, seed=2)
    tf.linalg.matmul(a, b).numpy()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def run_bench(out: str | Path, size: int = 9216, memory_budget_mb: int | None = None) -> dict:
    """Synthesise (once) and scan a size×size×12 scene; write bench.json; return the figures."""
    from .synth import synthesize_scene

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    scene = out / f"scene_{size}.tif"
    stamp = out / f"scene_{size}.json"
    synth_s = None
    if not (scene.exists() and stamp.exists() and json.loads(stamp.read_text()).get("seed") == BENCH_SEED):
        start = time.perf_counter()
        synthesize_scene(scene, size=size, seed=BENCH_SEED)
        synth_s = time.perf_counter() - start
        stamp.write_text(json.dumps({"seed": BENCH_SEED, "size": size}))

    config = ScanConfig() if memory_budget_mb is None else ScanConfig(memory_budget_mb=memory_budget_mb)
    shard = out / "shard"
    cmd = [sys.executable, "-m", "minescan", "--log-format", "json", "scan", str(scene),
           "--out", str(shard), "--overwrite", "--memory-budget-mb", str(config.memory_budget_mb)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark scan failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peak_rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    success = json.loads((shard / ShardLayout.MARKER).read_text())
    timings = success["timings_s"]

    n_bands = 12
    tiles = geometry.plan_subtiles(size, size, max_tile_pixels_for_budget(config.memory_budget_mb * 2**20, n_bands))
    flops = sum(discovery_flops(len(t.row.pixels), len(t.col.pixels), n_bands) for t in tiles)
    mm = matmul_gflops()
    area_km2 = (size * 10 / 1000) ** 2
    discovery_gflops = flops / timings["discovery"] / 1e9
    figures = {
        "command": "make bench  # = minescan bench --size %d --out %s" % (size, shlex.quote(str(out))),
        "scan_command": " ".join(shlex.quote(c) for c in cmd),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "scene": {"size_px": size, "bands": n_bands, "area_km2": round(area_km2, 1), "synthesis_s": synth_s and round(synth_s, 1)},
        "stages_s": timings,
        "scan_wall_s": round(wall, 2),
        "km2_per_s": round(area_km2 / wall, 2),
        "peak_rss_gib": round(peak_rss_kib / 2**20, 3),
        "tiles": success["tiles"],
        "halo_overhead": success["halo_overhead"],
        "memory_budget_mb": config.memory_budget_mb,
        "discovery_gflop": round(flops / 1e9, 1),
        "discovery_gflops": round(discovery_gflops, 1),
        "matmul_gflops": round(mm, 1),
        "discovery_vs_matmul": round(discovery_gflops / mm, 3),
        "counts": success["counts"],
        "targets": {"peak_rss_gib_max": 6.0, "halo_overhead_max": 1.15},
    }
    (out / "bench.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def format_bench(f: dict) -> str:
    s = f["stages_s"]
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in s.items())
    return "\n".join([
        f"scene {f['scene']['size_px']}²×{f['scene']['bands']} ({f['scene']['area_km2']} km²): "
        f"scan {f['scan_wall_s']:.1f}s wall = {f['km2_per_s']} km²/s",
        f"  stages: {stages}",
        f"  peak RSS {f['peak_rss_gib']:.2f} GiB (target ≤ 6), {f['tiles']} sub-tiles, "
        f"halo overhead {f['halo_overhead']:.3f} (target ≤ 1.15)",
        f"  discovery {f['discovery_gflops']} GFLOP/s vs matmul {f['matmul_gflops']} GFLOP/s "
        f"(ratio {f['discovery_vs_matmul']})",
    ])
