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
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import storage
from ..sites.footprints import SceneGrid

#: the scene rows and columns of the national grid over Brazil (5° N to 33° S, 74° W to 35° W)
_BRAZIL_ROWS = (91, 131)
_BRAZIL_COLS = (112, 159)


def write_run(run: str, detections_by_scene: Mapping[str, Any], scenes: Mapping[str, SceneGrid]) -> None:
    """Commit one shard per scene (detections.parquet + _SUCCESS.json) and a run.json for them.

    For tests and benchmarks of the reduce: the shards hold detections only (no
    probability grid), with the cell grid the reduce needs in `_SUCCESS.json`.
    """
    from . import commit
    from .layout import RunLayout, ShardLayout
    from ..outputs import write_detections_geoparquet

    layout = RunLayout(run)
    record = {
        "manifest": {"scenes": [{"id": scene_id} for scene_id in scenes]},
        "models": {"discovery": {"ref": "synthetic-shards"}, "impact": {"ref": "synthetic-shards"}},
    }
    storage.write_text(layout.run_json, json.dumps(record, indent=1))
    for scene_id, grid in scenes.items():
        with tempfile.TemporaryDirectory(prefix="minescan-bench-shard-") as staging:
            write_detections_geoparquet(Path(staging) / ShardLayout.DETECTIONS_PARQUET, detections_by_scene[scene_id])
            commit.publish_dir(staging, layout.shard(scene_id).root, {
                "scene_id": scene_id, "cell_shape": list(grid.cell_shape), "crs": grid.crs,
                "transform": list(grid.transform),
                "global_offset": list(grid.global_offset) if grid.global_offset else None,
                "counts": {"detections": len(detections_by_scene[scene_id])},
            })


def _scene_detections(scene_rc: tuple[int, int], per_scene: int, rng: np.random.Generator):
    """(detections, SceneGrid) of one synthetic scene: mines as random walks of cells."""
    import pandas as pd

    from .grid import S2_GRID, scene
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

    from .grid import SCENE_STEP_PX, scene_id
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
