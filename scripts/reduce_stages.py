"""Where the national reduce spends its time and memory, stage by stage (docs/BENCHMARKS.md).

Runs `minescan reduce` in this process with wall-clock and CPU timers wrapped around the
functions of its stages (reading the shards, building the sites, each national output),
then prints one line per stage: wall s, CPU s (the whole process's, so a stage that runs
beside another in a worker thread shows the other's CPU too), and the peak RSS when the
stage ended. After `make bench-reduce` has built the benchmark's run:

    PYTHONPATH=job python scripts/reduce_stages.py --run bench-out/reduce/run-1000x2000 \\
        --register bench-out/reduce/layers/register.csv \\
        --protected bench-out/reduce/layers/protected.gpkg \\
        --regions bench-out/reduce/layers/regions.gpkg

Timers only: nothing the reduce computes or writes changes.
"""

from __future__ import annotations

import functools
import importlib
import resource
import sys
import time

#: (module, function, stage) timed; a function is wrapped where its caller looks it up
STAGES = (
    ("minescan.batch.runner", "collect_detections", "read and check the shards"),
    ("minescan.sites.national", "load_inputs", "load the register and layers"),
    ("minescan.sites.national", "build_national", "build the sites"),
    ("minescan.outputs.national", "write_report_html", "report.html"),
    ("minescan.outputs.national", "print_pdf", "report.pdf (Chromium, worker thread)"),
    ("minescan.outputs.national", "map_html", "map.html (page text)"),
    ("minescan.outputs.national", "write_sites", "sites.parquet/.geojson/.kml/.csv, summary.md"),
    ("minescan.outputs.sites", "sites_geojson_text", "  sites.geojson text"),
    ("minescan.outputs.sites", "write_placemarks_kml", "  sites.kml"),
    ("minescan.outputs.sites", "write_table_csv", "  sites.csv"),
    ("minescan.outputs.national", "write_detections_geoparquet", "detections.parquet (worker thread)"),
    ("minescan.outputs.national", "write_geopackage", "minescan.gpkg"),
    ("minescan.outputs.national", "write_stac", "STAC"),
    ("minescan.batch.commit", "publish", "every national output, committed"),
)


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _timed(module: str, name: str, stage: str, spent: dict[str, list[float]]) -> None:
    owner = importlib.import_module(module)
    function = getattr(owner, name)

    @functools.wraps(function)
    def timed(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            total = spent.setdefault(stage, [0.0, 0.0, 0.0])
            total[0] += time.perf_counter() - wall
            total[1] += time.process_time() - cpu
            total[2] = _peak_gib()

    setattr(owner, name, timed)


def main(argv: list[str]) -> None:
    from minescan.cli.main import main as minescan

    spent: dict[str, list[float]] = {}
    for module, name, stage in STAGES:
        _timed(module, name, stage, spent)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        minescan(["reduce", *argv])
    finally:
        spent["the whole reduce (in this process)"] = [time.perf_counter() - wall, time.process_time() - cpu,
                                                       _peak_gib()]
        print(f"{'wall s':>7} {'CPU s':>7} {'peak GiB':>8}  stage", file=sys.stderr)
        for stage, (w, c, peak) in spent.items():
            print(f"{w:7.1f} {c:7.1f} {peak:8.2f}  {stage}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
