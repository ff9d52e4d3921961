"""What decoding one scan sub-tile costs, per GeoTIFF encoding (docs/BENCHMARKS.md).

Cuts one 2457² × 12 window (a sub-tile of the paper scene) out of the `make bench` scene,
writes it in each encoding (256-px tiles, band-interleaved, as the scene), and reads it back
whole with GDAL's block cache too small to help: best of 3 wall and CPU seconds, with one
and with two decoding threads. The scan reads the scene in whatever encoding it comes in;
this says what the encoding costs it.

    python scripts/bench_decode.py --scene bench-out/scene_9216.tif --out bench-out/decode
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import rasterio
from rasterio.windows import Window

SIDE = 2457
ENCODINGS = {
    "deflate, predictor 2 (the bench scene)": {"compress": "deflate", "predictor": 2, "zlevel": 1},
    "deflate, no predictor": {"compress": "deflate", "zlevel": 1},
    "zstd level 1, predictor 2": {"compress": "zstd", "predictor": 2, "zstd_level": 1},
    "zstd level 1, no predictor": {"compress": "zstd", "zstd_level": 1},
    "lzw, predictor 2": {"compress": "lzw", "predictor": 2},
    "uncompressed": {},
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="bench-out/scene_9216.tif")
    parser.add_argument("--out", default="bench-out/decode")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with rasterio.Env(GDAL_CACHEMAX=8 * 2**20), rasterio.open(args.scene) as src:
        window = src.read(window=Window(2000, 2000, SIDE, SIDE))
        profile = {"driver": "GTiff", "width": SIDE, "height": SIDE, "count": src.count, "dtype": src.dtypes[0],
                   "crs": src.crs, "transform": src.window_transform(Window(2000, 2000, SIDE, SIDE)),
                   "tiled": True, "blockxsize": 256, "blockysize": 256, "interleave": "band"}
    rows = []
    for name, options in ENCODINGS.items():
        path = out / f"window-{len(rows)}.tif"
        with rasterio.open(path, "w", **profile, **options) as dst:
            dst.write(window)
        row = {"encoding": name, "mb": round(path.stat().st_size / 1e6, 1)}
        for threads in (1, 2):
            best = (float("inf"), float("inf"))
            for _ in range(3):
                with rasterio.Env(GDAL_CACHEMAX=8 * 2**20, GDAL_NUM_THREADS=threads), rasterio.open(path) as src:
                    cpu, start = _cpu(), time.perf_counter()
                    src.read()
                    best = min(best, (time.perf_counter() - start, _cpu() - cpu))
            row[f"{threads}_thread"] = {"wall_s": round(best[0], 3), "cpu_s": round(best[1], 3)}
        rows.append(row)
        print(f"{name:40s} {row['mb']:6.1f} MB  1 thread: {row['1_thread']['wall_s']:.3f} s wall, "
              f"{row['1_thread']['cpu_s']:.3f} s CPU | 2 threads: {row['2_thread']['wall_s']:.3f} s wall, "
              f"{row['2_thread']['cpu_s']:.3f} s CPU")
        path.unlink()
    (out / "decode.json").write_text(json.dumps({"window_px": SIDE, "bands": int(window.shape[0]), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
