"""`minescan bench-reduce`: the reduce of a national run, timed, on synthetic shards.

A national run is about 1,000 scenes. `synthetic_run` commits that many shards on the
national Sentinel-2 grid (scenes over Brazil's latitudes, each with `per_scene` detections
clustered like mines: pits of a few to a few hundred cells, some scattered false alarms,
cells in the overlap columns detected by both neighbours), a point register with an entry
near some sites, and protected-area and region polygons over part of the country. Then
`minescan reduce` runs in a child process, as an operator runs it, and the benchmark
reads its wall time and peak RSS.

The shards are synthetic (no imagery is involved): the figures measure the reduce, not a
model.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import storage
from ..sites.footprints import SceneGrid
from . import commit
from .layout import NationalLayout, RunLayout, ShardLayout

#: the scene rows and columns of the national grid over Brazil (5° N to 33° S, 74° W to 35° W)
_BRAZIL_ROWS = (91, 131)
_BRAZIL_COLS = (112, 159)


def write_run(run: str, detections_by_scene: Mapping[str, Any], scenes: Mapping[str, SceneGrid]) -> None:
    """Commit one shard per scene (detections.parquet and its marker) and a run.json for them.

    For tests and benchmarks of the reduce: the shards hold detections only (no
    probability grid), with the cell grid the reduce needs in their marker.
    """
    from ..outputs import write_detections_geoparquet

    layout = RunLayout(run)
    record = {
        # synthetic, and said so: the map and the report of such a run are labelled SYNTHETIC
        "manifest": {"scenes": [{"id": scene_id} for scene_id in scenes],
                     "source": {"synthetic": True,
                                "sensor": "SYNTHETIC shards (random-walk detections, no imagery)"}},
        "models": {"discovery": {"ref": "synthetic-shards"}, "impact": {"ref": "synthetic-shards"}},
    }
    storage.write_text(layout.run_json, json.dumps(record, indent=1))
    for scene_id, grid in scenes.items():
        def fill(staging: Path, scene_id: str = scene_id, grid: SceneGrid = grid) -> dict[str, Any]:
            frame = detections_by_scene[scene_id]
            write_detections_geoparquet(staging / ShardLayout.DETECTIONS_PARQUET, frame)
            return {"scene_id": scene_id, "cell_shape": list(grid.cell_shape), "crs": grid.crs,
                    "transform": list(grid.transform),
                    "global_offset": list(grid.global_offset) if grid.global_offset else None,
                    "counts": {"detections": len(frame)}}

        commit.publish(layout.shard(scene_id).root, fill)


def _scene_detections(scene_rc: tuple[int, int], per_scene: int, rng: np.random.Generator):
    """(detections, SceneGrid) of one synthetic scene: mines as random walks of cells."""
    import pandas as pd

    from ..batch.grid import S2_GRID, scene
    from ..outputs import coerce_detections
    from ..scan.geometry import n_cells

    s = scene(*scene_rc)
    n = n_cells(s.size)
    r_off, c_off = s.pixel_row // 27, s.pixel_col // 27
    cells: set[tuple[int, int]] = set()
    while len(cells) < per_scene:
        if rng.random() < 0.15:  # a scattered false alarm
            cells.add((int(rng.integers(0, n)), int(rng.integers(0, n))))
            continue
        size = min(int(rng.pareto(1.2) * 8) + 2, 400, per_scene - len(cells))
        r, c = int(rng.integers(0, n)), int(rng.integers(0, n))
        for _ in range(size):
            cells.add((r, c))
            dr, dc = ((0, 1), (1, 0), (0, -1), (-1, 0))[int(rng.integers(4))]
            r, c = min(max(r + dr, 0), n - 1), min(max(c + dc, 0), n - 1)
    ij = np.array(sorted(cells))[:per_scene]
    pr, pc = 27 * ij[:, 0] + 100, 27 * ij[:, 1] + 100
    p = rng.uniform(0.6, 1.0, len(ij)).astype(np.float32)
    high = rng.random(len(ij)) < 0.6
    frame = pd.DataFrame({
        "scene_id": s.id, "cell_row": ij[:, 0], "cell_col": ij[:, 1], "pixel_row": pr, "pixel_col": pc,
        "lon": S2_GRID.lon(s.pixel_col + pc + 0.5), "lat": S2_GRID.lat(s.pixel_row + pr + 0.5),
        "p_mine": p, "impact_class": np.where(high, "high", "low"),
        "p_high": np.where(high, 0.7, 0.2).astype(np.float32), "p_low": np.where(high, 0.2, 0.7).astype(np.float32),
        "p_no_ore": np.full(len(ij), 0.1, np.float32), "kept": True, "model_version": "synthetic",
        "global_row": r_off + ij[:, 0], "global_col": c_off + ij[:, 1],
    })
    grid = SceneGrid((n, n), "EPSG:4326", s.transform, (r_off, c_off))
    return coerce_detections(frame), grid


def synthetic_run(run: str, n_scenes: int, per_scene: int, seed: int = 2019) -> dict[str, SceneGrid]:
    """Commit `n_scenes` synthetic shards on the national grid over Brazil; their grids."""
    rng = np.random.default_rng(seed)
    rows = range(*_BRAZIL_ROWS)
    cols = range(*_BRAZIL_COLS)
    every = [(r, c) for r in rows for c in cols]
    # a compact block of neighbouring scenes, so overlaps and cross-border sites occur
    picked = sorted(every, key=lambda rc: (rc[0] - 111) ** 2 + (rc[1] - 135) ** 2)[:n_scenes]
    detections, scenes = {}, {}
    for rc in picked:
        frame, grid = _scene_detections(rc, per_scene, rng)
        scene_id = str(frame["scene_id"].iloc[0])
        detections[scene_id], scenes[scene_id] = frame, grid
    write_run(run, _seen_twice(detections, scenes), scenes)
    return scenes


def _seen_twice(detections: dict, scenes: Mapping[str, SceneGrid]) -> dict:
    """Cells in a scene's last columns/rows, which its east/south neighbour computes too,
    added to that neighbour as well: the duplicates the reduce must keep once."""
    import pandas as pd

    from ..batch.grid import SCENE_STEP_PX, scene_id
    from ..outputs import coerce_detections

    step = SCENE_STEP_PX // 27
    out = {k: [v] for k, v in detections.items()}
    for sid, frame in detections.items():
        row, col = int(sid[1:5]), int(sid[6:])
        for (dr, dc), axis in (((0, 1), "cell_col"), ((1, 0), "cell_row")):
            neighbour = scene_id(row + dr, col + dc)
            if neighbour not in scenes:
                continue
            edge = frame[frame[axis] >= step].copy()
            edge[axis] -= step
            edge["scene_id"] = neighbour
            edge["pixel_row"], edge["pixel_col"] = 27 * edge["cell_row"] + 100, 27 * edge["cell_col"] + 100
            out[neighbour].append(edge)
    return {k: coerce_detections(pd.concat(v, ignore_index=True)) for k, v in out.items()}


def _layers(out: Path, scenes: Mapping[str, SceneGrid], detections_sample: np.ndarray, seed: int) -> dict[str, Path]:
    """A point register, protected areas and regions over the benchmark's scenes (synthetic)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from ..sites.footprints import coverage

    rng = np.random.default_rng(seed + 1)
    west, south, east, north = coverage(scenes).bounds
    # register: entries near a sample of detections (jittered ~100 m) and as many elsewhere
    near = detections_sample + rng.normal(0, 0.001, detections_sample.shape)
    lost = np.column_stack([rng.uniform(west, east, len(near)), rng.uniform(south, north, len(near))])
    points = np.concatenate([near, lost])
    register = out / "register.csv"
    pd.DataFrame({"id": [f"R{k:06d}" for k in range(len(points))], "name": "synthetic entry",
                  "ore": rng.choice(["Minério de Ferro", "Areia", "Ouro", "Argila"], len(points)),
                  "lon": points[:, 0], "lat": points[:, 1]}).to_csv(register, index=False)
    # protected areas: 300 irregular polygons of 10-60 km, 512 vertices each, around detections
    centres = detections_sample[rng.choice(len(detections_sample), 300)]
    angles = np.linspace(0, 2 * np.pi, 512, endpoint=False)
    rings = []
    for x, y in centres:
        radius = rng.uniform(0.05, 0.3) * (1 + 0.3 * np.sin(3 * angles + rng.uniform(0, 6)))
        rings.append(shapely.Polygon(np.column_stack([x + radius * np.cos(angles), y + radius * np.sin(angles)])))
    protected = out / "protected.gpkg"
    gpd.GeoDataFrame({"nome": [f"Área protegida {k}" for k in range(len(rings))],
                      "tipo": rng.choice(["terra indígena", "unidade de conservação"], len(rings))},
                     geometry=rings, crs="EPSG:4326").to_file(protected)
    # regions: 2° squares over the whole area, as states would cut it
    boxes = [shapely.box(x, y, x + 2, y + 2) for x in np.arange(west, east, 2) for y in np.arange(south, north, 2)]
    regions = out / "regions.gpkg"
    gpd.GeoDataFrame({"nome": [f"Região {k}" for k in range(len(boxes))]}, geometry=boxes,
                     crs="EPSG:4326").to_file(regions)
    return {"register": register, "protected": protected, "regions": regions}


def run_bench(out: str | Path, n_scenes: int = 1000, per_scene: int = 2000, seed: int = 2019) -> dict[str, Any]:
    """Build (once) a synthetic national run, reduce it in a child process, report the cost."""
    out = Path(out).resolve()
    run = out / f"run-{n_scenes}x{per_scene}"
    layers = out / "layers"
    built = time.perf_counter()
    if not Path(RunLayout(str(run)).run_json).exists():
        synthetic_run(str(run), n_scenes, per_scene, seed)
    if not (layers / "regions.gpkg").exists():
        scenes = _committed_grids(run)
        rng = np.random.default_rng(seed)
        picked = rng.choice(sorted(scenes), min(250, len(scenes)), replace=False)
        xy = np.concatenate([_sample_of(run, scene_id, rng) for scene_id in picked])
        layers.mkdir(parents=True, exist_ok=True)
        _layers(layers, scenes, xy, seed)
    build_s = time.perf_counter() - built
    command = [sys.executable, "-m", "minescan", "--log-format", "json", "reduce", "--run", str(run),
               "--register", str(layers / "register.csv"), "--protected", str(layers / "protected.gpkg"),
               "--regions", str(layers / "regions.gpkg")]
    load_before = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(out / "reduce.log", "wb") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage.ru_utime - before.ru_utime) + (usage.ru_stime - before.ru_stime)
    peak_kib = usage.ru_maxrss
    national = commit.read_committed(RunLayout(str(run)).national)
    summary = json.loads(commit.read_verified(national, NationalLayout.SUMMARY))
    figures = {
        "command": shlex.join(command),
        "scenes": summary["scenes_reduced"],
        "detections": summary["detections"],
        "unique_cells": summary["detections_unique_cells"],
        "sites": summary["sites"],
        "register_entries": sum(r["entries"] for r in summary["registers"].values()),
        "sites_registered": summary["sites_registered"],
        "protected_areas": sum(p["areas"] for p in summary["protected_layers"].values()),
        "sites_in_protected_areas": summary["sites_in_protected_areas"],
        "regions": summary["regions"]["areas"],
        "reduce_wall_s": round(wall, 1),
        "reduce_inside_s": summary["seconds"],
        # on a shared machine wall time includes waiting for a core; CPU time does not
        "reduce_cpu_s": round(cpu, 1),
        "peak_rss_gib": round(peak_kib / 2**20, 2),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
        "build_s": round(build_s, 1),
        "synthetic": True,
    }
    (out / "bench-reduce.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def _committed_grids(run: Path) -> dict[str, SceneGrid]:
    """The cell grids of a run's committed shards, from their markers."""
    layout = RunLayout(str(run))
    record = json.loads(storage.read_text(layout.run_json))
    grids = {}
    for entry in record["manifest"]["scenes"]:
        committed = commit.read_committed(layout.shard(entry["id"]).root)
        grids[entry["id"]] = SceneGrid.from_success(committed.record)
    return grids


def _sample_of(run: Path, scene_id: str, rng: np.random.Generator) -> np.ndarray:
    from ..outputs import read_detections

    committed = commit.read_committed(RunLayout(str(run)).shard(scene_id).root)
    frame = read_detections(committed.file_uri(ShardLayout.DETECTIONS_PARQUET))
    pick = rng.choice(len(frame), min(40, len(frame)), replace=False)  # 250 × 40 × 2 = 20,000 entries
    return frame[["lon", "lat"]].to_numpy()[pick]


def format_bench(figures: dict[str, Any]) -> str:
    return (
        f"reduce of {figures['scenes']} SYNTHETIC shards, {figures['detections']:,} detections "
        f"({figures['unique_cells']:,} unique cells) → {figures['sites']:,} sites, with "
        f"{figures['register_entries']:,} register entries, {figures['protected_areas']} protected areas and "
        f"{figures['regions']} regions: {figures['reduce_wall_s']} s wall ({figures['reduce_cpu_s']} s CPU), "
        f"peak RSS {figures['peak_rss_gib']} GiB "
        f"(load average {figures['load_average_before'][0]} on {figures['cpus']} CPUs)"
    )
