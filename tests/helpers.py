"""Helpers the tests share: paths, tiny scenes from fixed seeds, running the CLI in-process.

Fixtures live in conftest.py; plain functions and constants live here, so tests import them
from a module of their own rather than from conftest.
"""

from __future__ import annotations

import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
#: small real reference files copied into the repository (see data/README.md)
DATA = Path(__file__).resolve().parent / "data"


def write_scene(path, data, *, crs="EPSG:4326", transform=None, nodata=0, descriptions=None):
    """Write a (B, H, W) array as a GeoTIFF; the default grid is 10 m at the equator."""
    import rasterio
    from affine import Affine

    if transform is None:
        from minescan.bands import PIXEL_DEG as px

        transform = Affine(px, 0, -44.0, 0, -px, -20.0)
    count, height, width = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count,
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(descriptions)
    return path


def random_scene(rng, height, width, bands=12):
    return rng.integers(200, 4000, size=(bands, height, width), dtype="uint16")


def run_cli(argv) -> int:
    """Run `minescan ARGV` in-process; return its exit code (0 when main returns).

    Output is what a person at a terminal reads (`--log-format text`), unless ARGV picks a
    format: under pytest stderr is not a terminal, where `auto` would pick JSON lines.
    """
    from minescan.cli.main import main

    argv = [str(a) for a in argv]
    if "--log-format" not in argv:
        argv = ["--log-format", "text", *argv]
    try:
        main(argv)
    except SystemExit as exc:
        return 0 if exc.code is None else int(exc.code)
    return 0


def race(n: int, func) -> list:
    """Run func(i) in n threads released together; return their results by i."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = func(i)
        except Exception as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return results


def shard_like_tree(base: Path, tag: str) -> Path:
    """A small shard-like tree (a zarr directory and a parquet file) whose bytes depend on `tag`."""
    import json

    staging = base / f"staging-{tag}"
    (staging / "probability.zarr" / "c" / "0").mkdir(parents=True)
    (staging / "probability.zarr" / "zarr.json").write_text(json.dumps({"tag": tag}))
    (staging / "probability.zarr" / "c" / "0" / "0").write_bytes(tag.encode() * 1000)
    (staging / "detections.parquet").write_bytes(b"PAR1" + tag.encode() * 50)
    return staging


def error_lines(stderr: str) -> list[str]:
    """The `minescan: error: …` lines of a command's stderr, whether printed as text (a
    terminal) or as JSON log objects (a pod, or pytest's captured stderr)."""
    import json

    lines = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            line = json.loads(line).get("message", "")
        if line.startswith("minescan: error: "):
            lines.append(line)
    return lines


def grid_detections(cells, *, lon=None, lat=None, scene_rc=None, **common):
    """Detections of one scene of the national Sentinel-2 grid, and that scene's cell grid.

    The scene is `scene_rc` (row, col) of the grid, or the one whose owned area holds
    (lon, lat). `cells` are (drow, dcol) offsets from the scene's middle cell (local cell
    171 of 343 per axis), or dicts with `drow`, `dcol` and any detection column to
    override. Returns (detections, {scene_id: SceneGrid}).
    """
    import pandas as pd
    from minescan.batch.grid import OWNED_CELL_OFFSET, S2_GRID, scene
    from minescan.outputs import coerce_detections
    from minescan.scan.geometry import n_cells as n_cells_of
    from minescan.sites.footprints import SceneGrid, national_cells

    g = S2_GRID
    if scene_rc is None:
        row0, col0 = (int(v[0]) for v in national_cells([lon], [lat]))
        scene_rc = ((row0 - OWNED_CELL_OFFSET) * 27 // g.step_px, (col0 - OWNED_CELL_OFFSET) * 27 // g.step_px)
    s = scene(*scene_rc)
    r_off, c_off = s.pixel_row // 27, s.pixel_col // 27
    n_cells = n_cells_of(s.size)
    middle = n_cells // 2
    rows = []
    for cell in cells:
        spec = dict(cell) if isinstance(cell, dict) else {"drow": cell[0], "dcol": cell[1]}
        i, j = middle + spec.pop("drow"), middle + spec.pop("dcol")
        assert 0 <= i < n_cells and 0 <= j < n_cells, "cell outside the scene"
        pr, pc = 27 * i + 100, 27 * j + 100
        rows.append({
            "scene_id": s.id, "cell_row": i, "cell_col": j, "pixel_row": pr, "pixel_col": pc,
            "lon": g.lon(s.pixel_col + pc + 0.5), "lat": g.lat(s.pixel_row + pr + 0.5),
            "p_mine": 0.9, "impact_class": "high", "p_high": 0.7, "p_low": 0.2, "p_no_ore": 0.1,
            "kept": True, "model_version": "test", "global_row": r_off + i, "global_col": c_off + j,
            **common, **spec,
        })
    grid = SceneGrid(cell_shape=(n_cells, n_cells), crs="EPSG:4326", transform=s.transform,
                     global_offset=(r_off, c_off))
    return coerce_detections(pd.DataFrame(rows)), {s.id: grid}
