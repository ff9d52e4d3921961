"""A scene shard (DESIGN §7): the files one scan writes, committed whole or not at all.

    <shard>/probability.zarr     p(mine) per output cell, CRS + transform in its attributes
    <shard>/detections.parquet   GeoParquet 1.1 points (EPSG:4326), one row per detection
    <shard>/detections.csv       the same table for spreadsheets
    <shard>/detections.kml       the same points for Google Earth
    <shard>/_SUCCESS.json        written last: counts, timings, shapes, hashes, models, config

Files are written to a local staging directory and published by `storage.publish_shard`,
so a crash leaves no `_SUCCESS.json` and a shard without it does not exist.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from .. import __version__
from ..scan import geometry
from ..scan.config import ScanConfig
from ..scan.scanner import ScanResult
from ..scan.scene import cell_transform

SUCCESS_FILE = "_SUCCESS.json"
PROBABILITY = "probability.zarr"
DETECTIONS_PARQUET = "detections.parquet"
DETECTIONS_CSV = "detections.csv"
DETECTIONS_KML = "detections.kml"


def write_shard_files(result: ScanResult, staging: Path) -> None:
    """Write every data file of a shard (all but `_SUCCESS.json`) into `staging`."""
    from .. import outputs

    scene = result.scene
    outputs.write_probability_zarr(
        staging / PROBABILITY,
        result.p_mine,
        cell_transform=cell_transform(scene.transform),
        crs=scene.crs_wkt,
        attrs={
            "scene_id": scene.scene_id,
            "model_version": result.model_version,
            "threshold": result.threshold,
            "stride_px": geometry.STRIDE,
            "centre_offset_px": geometry.CENTRE_OFFSET,
            "scene_transform": list(scene.transform)[:6],
            "global_offset": list(result.global_offset) if result.global_offset else None,
        },
    )
    outputs.write_detections_geoparquet(staging / DETECTIONS_PARQUET, result.detections)
    outputs.write_detections_csv(staging / DETECTIONS_CSV, result.detections)
    outputs.write_detections_kml(
        staging / DETECTIONS_KML, result.detections, name=f"minescan {scene.scene_id}"
    )


def success_record(result: ScanResult, config: ScanConfig, source: str, hashes: dict[str, str]) -> dict[str, Any]:
    """The content of `_SUCCESS.json`: enough to audit and to reduce without reopening data."""
    scene = result.scene
    return {
        "minescan_version": __version__,
        "scene_id": scene.scene_id,
        "source": source,
        "scene_shape": [scene.height, scene.width],
        "cell_shape": list(result.p_mine.shape),
        "crs": scene.crs_wkt,
        "transform": list(scene.transform)[:6],
        "global_offset": list(result.global_offset) if result.global_offset else None,
        "model_version": result.model_version,
        "threshold": result.threshold,
        "counts": result.counts,
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "backend": result.backend,
        "memory_mib": result.memory,
        "tiles": result.n_tiles,
        "halo_overhead": round(result.halo_overhead, 4),
        "config": config.model_dump(mode="json"),
        "files": hashes,
    }


def commit_shard(result: ScanResult, shard_uri: str, config: ScanConfig, source: str) -> bool:
    """Write and publish a shard; False if another worker committed it first."""
    from .. import storage
    from ..log import timed

    staging = Path(tempfile.mkdtemp(prefix=f"minescan-{result.scene.scene_id}-"))
    staging.chmod(0o755)  # the published shard keeps these bits; mkdtemp's 0700 would hide it
    try:
        with timed(result.timings, "write"):
            write_shard_files(result, staging)
            hashes = storage.hash_tree(staging)
        with timed(result.timings, "publish"):
            # the record is written inside the commit, so it holds every stage but this one
            return storage.publish_shard(staging, shard_uri, success_record(result, config, source, hashes))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
