"""`make bench`: scan a paper-sized synthetic scene and report what it cost, against targets.

The scan runs in a child process (the same `minescan scan` a user runs) so its peak RSS
is its own. The denominator is this machine's float32 GEMM through numpy's BLAS, measured
in the same run in a child process whose environment drops `OPENBLAS_CORETYPE` and
`OPENBLAS_L2_SIZE` (which can pin OpenBLAS to a slower kernel); the kernel it used is
recorded via threadpoolctl. From it: discovery GFLOP/s ÷ GEMM GFLOP/s, and the scan's wall
time ÷ the ideal time (the discovery network's exact multiply-adds over the scene, no halo,
at GEMM speed). Every figure is printed with its target and a pass/fail mark.

`bench backends`, `bench memory` and `bench precision` measure what the scan's defaults
rest on: the backends side by side, the memory model per backend, and the largest
difference mixed precision makes.
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

from .batch.layout import ShardLayout
from .scan import geometry
from .scan.backends import resolve_backend
from .scan.config import ScanConfig
from .scan.inference import max_tile_pixels_for_budget
from .scan.tiles import overlap_default, usable_cpus

BENCH_SEED = 9216
N_BANDS = 12
#: the issue's targets for the paper-sized scene (docs/BENCHMARKS.md)
TARGETS = {
    "wall_vs_ideal_max": 2.3,
    "discovery_vs_gemm_min": 0.7,
    "peak_rss_gib_max": 4.0,
    "halo_overhead_max": 1.15,
    "budget_overrun_max": 1.10,
    "impact_s_max": 1.0,
    "write_s_max": 1.0,
}
#: environment variables that can pin OpenBLAS to a slower kernel than the CPU has
_BLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


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


def impact_flops(n_patches: int, n_bands: int) -> float:
    """Multiply-adds ×2 of the impact network over `n_patches` 21×21 patches."""
    per_patch = 21 * 21 * 32 * 4 * n_bands + 11 * 11 * 64 * 4 * 32 + 6 * 6 * 64 * 1024 + 1024 * 3
    return 2.0 * per_patch * n_patches


def gemm_gflops(n: int = 4096, repeats: int = 5) -> dict:
    """Best-of float32 GEMM through numpy's BLAS in a child process without BLAS pins."""
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_PINS}
    code = f"from minescan.bench import _gemm_child; _gemm_child({n}, {repeats})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _gemm_child(n: int, repeats: int) -> None:
    from threadpoolctl import threadpool_info

    a = np.random.default_rng(1).random((n, n), dtype=np.float32)
    b = np.random.default_rng(2).random((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    blas = [
        {k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    print(json.dumps({"gflops": round(2.0 * n**3 / best / 1e9, 1), "n": n, "blas": blas}))


def ensure_scene(out: Path, size: int) -> tuple[Path, float | None]:
    """The synthetic bench scene of `size` (seed 9216) in `out`, synthesised once."""
    from .synth import synthesize_scene

    scene = out / f"scene_{size}.tif"
    stamp = out / f"scene_{size}.json"
    if scene.exists() and stamp.exists() and json.loads(stamp.read_text()).get("seed") == BENCH_SEED:
        return scene, None
    start = time.perf_counter()
    synthesize_scene(scene, size=size, seed=BENCH_SEED)
    stamp.write_text(json.dumps({"seed": BENCH_SEED, "size": size}))
    return scene, time.perf_counter() - start


def run_bench(
    out: str | Path, size: int = 9216, memory_budget_mb: int | None = None, backend: str = "auto"
) -> dict:
    """Synthesise (once) and scan a size×size×12 scene; write bench.json; return the figures."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    scene, synth_s = ensure_scene(out, size)
    config = ScanConfig(backend=backend, **({} if memory_budget_mb is None else {"memory_budget_mb": memory_budget_mb}))
    backend = resolve_backend(config.backend)
    load_start = os.getloadavg()
    scan = _timed_scan(scene, out / "shard", config)
    gemm = gemm_gflops()
    success = scan["success"]
    timings = success["timings_s"]
    tiles = geometry.plan_subtiles(
        size, size, max_tile_pixels_for_budget(config.memory_budget_mb * 2**20, N_BANDS, backend)
    )
    flops = sum(discovery_flops(len(t.row.pixels), len(t.col.pixels), N_BANDS) for t in tiles)
    ideal_s = discovery_flops(size, size, N_BANDS) / (gemm["gflops"] * 1e9)
    area_km2 = (size * 10 / 1000) ** 2
    discovery_gflops = flops / timings["discovery"] / 1e9
    memory = success["memory_mib"]
    figures = {
        "command": f"minescan bench --size {size} --out {shlex.quote(str(out))}",
        "scan_command": scan["command"],
        "machine": _machine(),
        "load_average": {"start": [round(v, 2) for v in load_start], "end": [round(v, 2) for v in os.getloadavg()]},
        "scene": {"size_px": size, "bands": N_BANDS, "area_km2": round(area_km2, 1), "synthesis_s": synth_s and round(synth_s, 1)},
        "backend": success["backend"],
        # the scan's child runs on this machine, so it decides the same (`tiles.overlap_default`)
        "usable_cpus": usable_cpus(),
        "stages_overlapped": overlap_default(),
        "stages_s": timings,
        "scan_wall_s": round(scan["wall_s"], 2),
        "scan_cpu_s": scan["cpu_s"],
        "km2_per_s": round(area_km2 / scan["wall_s"], 2),
        "peak_rss_gib": round(scan["peak_rss_bytes"] / 2**30, 3),
        "memory_budget_mb": config.memory_budget_mb,
        "tile_loop_mib": memory["tile_loop_mib"],
        "tiles": success["tiles"],
        "halo_overhead": success["halo_overhead"],
        "discovery_gflop": round(flops / 1e9, 1),
        "discovery_gflops": round(discovery_gflops, 1),
        "impact_gflop": round(impact_flops(success["counts"]["candidates"], N_BANDS) / 1e9, 1),
        "gemm": gemm,
        "discovery_vs_gemm": round(discovery_gflops / gemm["gflops"], 3),
        "ideal_s": round(ideal_s, 4),
        "wall_vs_ideal": round(scan["wall_s"] / ideal_s, 2),
        "counts": success["counts"],
        "targets": TARGETS,
    }
    figures["checks"] = _checks(figures)
    (out / "bench.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def _timed_scan(scene: Path, shard: Path, config: ScanConfig, extra: tuple[str, ...] = ()) -> dict:
    """`minescan scan` in a child process: wall time, peak RSS, and its `_SUCCESS.json`."""
    cmd = [sys.executable, "-m", "minescan", "--log-format", "json", "scan", str(scene), "--out", str(shard),
           "--overwrite", "--memory-budget-mb", str(config.memory_budget_mb), "--backend", config.backend, *extra]
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr)
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the largest child so far
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"benchmark scan failed ({proc.returncode}):\n{stderr.read().decode()[-3000:]}")
    return {"command": " ".join(shlex.quote(c) for c in cmd), "wall_s": wall,
            "peak_rss_bytes": usage.ru_maxrss * 1024, "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "success": json.loads((shard / ShardLayout.MARKER).read_text())}


def _checks(f: dict) -> dict[str, bool]:
    t, s = f["targets"], f["stages_s"]
    return {
        "wall_vs_ideal": f["wall_vs_ideal"] <= t["wall_vs_ideal_max"],
        "discovery_vs_gemm": f["discovery_vs_gemm"] >= t["discovery_vs_gemm_min"],
        "peak_rss": f["peak_rss_gib"] <= t["peak_rss_gib_max"],
        "halo_overhead": f["halo_overhead"] <= t["halo_overhead_max"],
        "memory_budget": f["tile_loop_mib"] <= t["budget_overrun_max"] * f["memory_budget_mb"],
        "impact_stage": s.get("impact", 0.0) <= t["impact_s_max"],
        "write_stage": s.get("write", 0.0) <= t["write_s_max"],
    }


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": _cpu_model(),
            "python": platform.python_version()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def format_bench(f: dict) -> str:
    s, t, c = f["stages_s"], f["targets"], f["checks"]
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in s.items())
    blas = f["gemm"]["blas"][0] if f["gemm"]["blas"] else {}
    return "\n".join([
        f"scene {f['scene']['size_px']}²×{f['scene']['bands']} ({f['scene']['area_km2']} km²), backend "
        f"{f['backend']}: scan {f['scan_wall_s']:.1f}s wall = {f['km2_per_s']} km²/s "
        f"(load average {f['load_average']['start'][0]} at start, {f['load_average']['end'][0]} at end)",
        f"  stages ({'overlapped, so they add up to more than the wall' if f.get('stages_overlapped') else 'one after another, each on all ' + str(f.get('usable_cpus')) + ' cores'}; "
        f"tiles_wall is the loop's wall time): {stages}; "
        f"CPU {f['scan_cpu_s']:.1f} core-s = {f['scene']['area_km2'] / f['scan_cpu_s']:.1f} km² per core-second",
        f"  GEMM (numpy {blas.get('internal_api')} {blas.get('architecture')}, {blas.get('num_threads')} threads): "
        f"{f['gemm']['gflops']} GFLOP/s; ideal scan time {f['ideal_s']:.2f}s",
        f"  [{_mark(c['wall_vs_ideal'])}] scan wall ÷ ideal = {f['wall_vs_ideal']} (target ≤ {t['wall_vs_ideal_max']})",
        f"  [{_mark(c['discovery_vs_gemm'])}] discovery {f['discovery_gflops']} GFLOP/s ÷ GEMM = "
        f"{f['discovery_vs_gemm']} (target ≥ {t['discovery_vs_gemm_min']})",
        f"  [{_mark(c['peak_rss'])}] peak RSS {f['peak_rss_gib']:.2f} GiB (target ≤ {t['peak_rss_gib_max']})",
        f"  [{_mark(c['memory_budget'])}] tile loop {f['tile_loop_mib']:.0f} MiB within the "
        f"{f['memory_budget_mb']} MiB budget (target ≤ +{round((t['budget_overrun_max'] - 1) * 100)} %)",
        f"  [{_mark(c['halo_overhead'])}] halo overhead {f['halo_overhead']:.3f} over {f['tiles']} sub-tiles "
        f"(target ≤ {t['halo_overhead_max']})",
        f"  [{_mark(c['impact_stage'])}] impact {s.get('impact', 0):.2f}s for {f['counts']['candidates']} candidates, "
        f"{f['impact_gflop']} GFLOP (target ≤ {t['impact_s_max']} s)",
        f"  [{_mark(c['write_stage'])}] write {s.get('write', 0):.2f}s (target ≤ {t['write_s_max']} s)",
    ])


# ---------------------------------------------------------------- what the defaults rest on


def compare_backends(size: int = 2478, n_patches: int = 1024, rounds: int = 5) -> dict:
    """Every installed candidate on both networks, interleaved in one process, best of
    `rounds`, beside numpy's GEMM: GFLOP/s, ratio to GEMM, largest difference from TensorFlow.

    Candidates: the installed shipped backends, each as the scan loads it (ONNX Runtime with
    its arena and spinning off), and TensorFlow with XLA. Interleaving makes the ratios fair
    on a shared, noisy machine.
    """
    from .models.bundled import load_models
    from .scan.backends import installed_backends, load_network, tensorflow_network

    discovery, impact = load_models(None, None)
    x = np.random.default_rng(0).normal(size=(1, size, size, N_BANDS)).astype(np.float32)
    patches = np.random.default_rng(1).normal(size=(n_patches, 21, 21, N_BANDS)).astype(np.float32)
    a = np.random.default_rng(2).random((2048, 2048), dtype=np.float32)
    work = {"discovery": (x, discovery_flops(size, size, N_BANDS)), "impact": (patches, impact_flops(n_patches, N_BANDS))}
    calls = {"gemm": (lambda: a @ a, 2.0 * 2048**3)}
    reference = {}
    for net, model in (("discovery", discovery), ("impact", impact)):
        data, flops = work[net]
        runners = {name: load_network(model, name) for name in installed_backends()}
        runners.update(_extra_candidates(model.model))
        reference[net] = tensorflow_network(model.model)(data)
        for name, run in runners.items():
            if getattr(run, "channels_first", False):  # measured in the layout the scan gives it
                planes = np.ascontiguousarray(np.moveaxis(data, -1, 1))
                calls[f"{net}/{name}"] = (lambda run=run, planes=planes: run(planes, channels_first=True), flops)
            else:
                calls[f"{net}/{name}"] = (lambda run=run, data=data: run(data), flops)
    diffs = {k: float(np.max(np.abs(np.asarray(f()) - reference[k.split("/")[0]])))
             for k, (f, _) in calls.items() if k != "gemm"}
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for name, (call, _) in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    gemm = calls["gemm"][1] / best["gemm"] / 1e9
    rows = {name: {"gflops": round(calls[name][1] / best[name] / 1e9, 1),
                   "vs_gemm": round(calls[name][1] / best[name] / 1e9 / gemm, 3),
                   "max_abs_diff_vs_tensorflow": diffs.get(name, 0.0)} for name in calls}
    return {"command": f"minescan bench backends --size {size}", "size_px": size, "n_patches": n_patches,
            "rounds": rounds, "machine": _machine(), "load_average": [round(v, 2) for v in os.getloadavg()],
            "results": rows}


def _extra_candidates(keras_model) -> dict:
    """Candidates that are measured but not shipped: TensorFlow with XLA. (ONNX Runtime is
    shipped, so it is measured through `load_network` with the scan's own session options.)"""
    import tensorflow as tf

    spec = tf.TensorSpec((None, *keras_model.input_shape[1:]), tf.float32)
    xla = tf.function(lambda t: keras_model(t, training=False), input_signature=[spec], jit_compile=True)
    return {"tensorflow-xla": lambda data: xla(data).numpy()}


def format_backends(r: dict) -> str:
    lines = [f"{r['command']}  (load average {r['load_average'][0]}; best of {r['rounds']}, interleaved)"]
    for name, row in r["results"].items():
        lines.append(f"  {name:28s} {row['gflops']:7.1f} GFLOP/s  {row['vs_gemm']:5.2f} × GEMM  "
                     f"max |Δ| vs TensorFlow {row['max_abs_diff_vs_tensorflow']:.1e}")
    return "\n".join(lines)


def measure_memory(backend: str, sizes: tuple[int, ...] = (1024, 2048)) -> dict:
    """Bytes the discovery network holds per input pixel beyond its input, per tile size,
    each in a fresh child process (so one measurement's peak cannot hide another's)."""
    rows = []
    for side in sizes:
        code = f"from minescan.bench import _memory_child; _memory_child({backend!r}, {side})"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"command": f"minescan bench memory --backend {backend}", "backend": backend, "rows": rows,
            "bytes_per_pixel": max(r["bytes_per_pixel"] for r in rows)}


def _memory_child(backend: str, side: int) -> None:
    from .models.bundled import load_models
    from .scan.backends import load_network
    from .scan.scanner import current_rss_bytes, peak_rss_bytes

    network = load_network(load_models(None, None)[0], backend)
    network(np.zeros((1, 256, 256, N_BANDS), np.float32))  # runtime start-up, outside the figure
    # drawn as float32 directly: a float64 draw would set a peak that hides the network's
    x = np.random.default_rng(0).standard_normal((1, side, side, N_BANDS), dtype=np.float32)
    if network.channels_first:  # in the layout the scan gives it, so no transposing copy counts
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    before = current_rss_bytes()
    network(x, channels_first=network.channels_first)
    grown = max(0, peak_rss_bytes() - before)
    print(json.dumps({"side_px": side, "bytes_per_pixel": round(grown / side**2, 1)}))


def measure_precision(size: int = 1024) -> dict:
    """Largest difference of mixed-precision (float16) TensorFlow from float32, both networks,
    on a synthetic scene (seed 9216) normalised as a scan would: p(mine) per cell, and the
    impact softmax on a patch centred on every cell."""
    import tempfile

    import rasterio

    from .models.bundled import load_models
    from .scan.backends import tensorflow_network
    from .scan.inference import extract_patches

    discovery, impact = load_models(None, None)
    with tempfile.TemporaryDirectory(prefix="minescan-precision-") as tmp:
        scene, _ = ensure_scene(Path(tmp), size)
        with rasterio.open(scene) as src:
            raw = np.moveaxis(src.read(), 0, -1)
    cells = np.stack(np.meshgrid(np.arange(geometry.n_cells(size)), np.arange(geometry.n_cells(size))), -1).reshape(-1, 2)
    patches = extract_patches(raw, geometry.centre_pixel(cells), window_origin=(0, 0), scene_shape=(size, size))
    data = {"discovery": discovery.card.normalization.apply(raw)[None],
            "impact": impact.card.normalization.apply(patches)}
    out = {}
    for net, model in (("discovery", discovery), ("impact", impact)):
        full = tensorflow_network(model.model)(data[net])
        half = tensorflow_network(model.model, mixed_precision=True)(data[net])
        out[net] = float(np.max(np.abs(full - half)))
    return {"command": f"minescan bench precision --size {size}", "scene": f"synthetic, seed {BENCH_SEED}",
            "max_abs_diff_float16_vs_float32": out}


def run_gpu_bench(out: str | Path, size: int = 9216, memory_budget_mb: int = 16000) -> dict:
    """`make bench-gpu`: the scan on TensorFlow's GPU in float32 and in mixed precision.

    Tiles follow the device's free memory; the host budget only bounds the sub-tiles in
    flight. Reports each scan's wall time and GFLOP/s beside a float32 matmul on the same
    GPU, and the largest p(mine) difference mixed precision makes over the whole scene.
    """
    import tensorflow as tf

    from .errors import InputError
    from .outputs import read_probability_zarr, write_text_atomic

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        raise InputError("no GPU is visible to TensorFlow here: run `make bench-gpu` on a GPU node (gpu image)")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    scene, _ = ensure_scene(out, size)
    mixed = out / "mixed-precision.yaml"
    write_text_atomic(mixed, "mixed_precision: true\n")
    config = ScanConfig(backend="tensorflow", memory_budget_mb=memory_budget_mb)
    runs = {"float32": _timed_scan(scene, out / "shard-gpu-float32", config),
            "mixed_float16": _timed_scan(scene, out / "shard-gpu-mixed", config, ("--config", str(mixed)))}
    grids = {k: read_probability_zarr(out / f"shard-gpu-{'float32' if k == 'float32' else 'mixed'}" / "probability.zarr")[0]
             for k in runs}
    n = 8192
    a = tf.random.uniform((n, n), dtype=tf.float32, seed=1)
    tf.linalg.matmul(a, a).numpy()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        tf.linalg.matmul(a, a).numpy()
        best = min(best, time.perf_counter() - start)
    matmul = 2.0 * n**3 / best / 1e9
    area_km2 = (size * 10 / 1000) ** 2
    figures = {"command": f"make bench-gpu  # = minescan bench gpu --size {size} --out {out}",
               "gpu": [g.name for g in gpus], "machine": _machine(), "matmul_gflops_float32": round(matmul, 1),
               "ideal_s": round(discovery_flops(size, size, N_BANDS) / (matmul * 1e9), 3), "runs": {}}
    for name, run in runs.items():
        s = run["success"]
        figures["runs"][name] = {
            "scan_wall_s": round(run["wall_s"], 2), "km2_per_s": round(area_km2 / run["wall_s"], 1),
            "stages_s": s["timings_s"], "tiles": s["tiles"], "halo_overhead": s["halo_overhead"],
            "gpu_free_mib": s["memory_mib"].get("gpu_free_mib"), "peak_host_rss_gib": round(run["peak_rss_bytes"] / 2**30, 2),
            "discovery_gflops": round(discovery_flops(size, size, N_BANDS) * s["halo_overhead"] / s["timings_s"]["discovery"] / 1e9, 1),
        }
    diff = np.abs(grids["float32"] - grids["mixed_float16"])
    figures["mixed_precision_max_abs_diff_p_mine"] = float(np.nanmax(diff)) if np.isfinite(diff).any() else None
    (out / "bench-gpu.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def format_gpu_bench(f: dict) -> str:
    lines = [f"{f['command']}: {', '.join(f['gpu'])}; float32 matmul {f['matmul_gflops_float32']} GFLOP/s, "
             f"ideal scan {f['ideal_s']} s"]
    for name, r in f["runs"].items():
        lines.append(f"  {name}: {r['scan_wall_s']} s wall = {r['km2_per_s']} km²/s, discovery {r['discovery_gflops']} "
                     f"GFLOP/s, {r['tiles']} tiles (halo {r['halo_overhead']}), GPU free {r['gpu_free_mib']} MiB, "
                     f"host RSS {r['peak_host_rss_gib']} GiB; stages {r['stages_s']}")
    lines.append(f"  mixed precision: largest |Δ p(mine)| over the scene {f['mixed_precision_max_abs_diff_p_mine']}")
    return "\n".join(lines)
