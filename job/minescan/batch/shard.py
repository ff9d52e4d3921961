"""A scene shard: the files one scan writes, committed whole or not at all.

`scan_and_commit` is the one path both `minescan scan` and a map pod take: fetch the scene
(local or gs://), scan it, write the shard's files (`ShardLayout` names them) into a staging
directory and commit it with `batch.commit`, whose marker (`_SUCCESS.json`) records counts,
timings, shapes, models, config and every file's SHA-256. A shard without a marker does not
exist; a reader checks each file it reads against the marker.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .. import __version__, storage
from ..errors import ConflictError
from ..scan import geometry
from ..scan.config import ScanConfig
from ..scan.scene import cell_transform
from . import commit
from .layout import ShardLayout, check_scene_id, scene_id_from_name

if TYPE_CHECKING:
    from ..models.card import LoadedModel
    from ..scan.scanner import ScanResult


class ShardRecord(BaseModel):
    """What the reduce relies on in a shard's marker (the rest is for people and audits)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    scene_id: str
    cell_shape: tuple[int, int] = Field(description="output cells (rows, cols) of the scene")
    files: dict[str, str]
    data: str


def write_shard_files(result: ScanResult, staging: Path) -> None:
    """Write every data file of a shard (all but the marker) into `staging`."""
    from .. import outputs

    scene = result.scene
    outputs.write_probability_zarr(
        staging / ShardLayout.PROBABILITY,
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
    outputs.write_probability_cog(
        staging / ShardLayout.PROBABILITY_COG, result.p_mine, cell_transform=cell_transform(scene.transform),
        crs=scene.crs_wkt,
    )
    outputs.write_detections_geoparquet(staging / ShardLayout.DETECTIONS_PARQUET, result.detections)
    outputs.write_detections_csv(staging / ShardLayout.DETECTIONS_CSV, result.detections)
    outputs.write_detections_kml(
        staging / ShardLayout.DETECTIONS_KML, result.detections, name=f"minescan {scene.scene_id}"
    )


def success_record(result: ScanResult, config: ScanConfig, source: str) -> dict[str, Any]:
    """The marker's record: enough to audit and to reduce without reopening data."""
    scene = result.scene
    return {
        "minescan_version": __version__,
        "scene_id": scene.scene_id,
        "source": storage.redact(source),
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
    }


def commit_shard(result: ScanResult, shard: ShardLayout, config: ScanConfig, source: str,
                 *, replace: bool = False) -> bool:
    """Write and commit a shard; False if another worker committed it first."""
    from ..log import timed

    def fill(staging: Path) -> dict[str, Any]:
        with timed(result.timings, "write"):
            write_shard_files(result, staging)
        # the record is written inside the commit, so it holds every stage but publishing
        return success_record(result, config, source)

    with timed(result.timings, "publish"):
        return commit.publish(shard.root, fill, replace=replace)


def read_shard(shard: ShardLayout) -> tuple[commit.Committed, ShardRecord] | None:
    """A committed shard and its checked record, or None when it is not committed."""
    from ..validation import validate

    committed = commit.read_committed(shard.root)
    if committed is None:
        return None
    what = f"{shard.marker} is not a shard marker (remove the shard and re-run its scan):"
    return committed, validate(ShardRecord, committed.record, what)


def scan_and_commit(
    scene: str,
    shard: ShardLayout,
    discovery: LoadedModel,
    impact: LoadedModel,
    config: ScanConfig,
    *,
    scene_id: str,
    replace: bool = False,
) -> tuple[ScanResult, bool]:
    """Fetch `scene` (local or gs://), scan it, commit its shard; False if another worker
    committed the shard first."""
    from ..scan.scanner import scan_scene

    with tempfile.TemporaryDirectory(prefix="minescan-scan-") as tmp:
        local = str(storage.localize(scene, tmp))
        result = scan_scene(local, discovery, impact, config, scene_id=scene_id)
    return result, commit_shard(result, shard, config, source=scene, replace=replace)


def scan_to_shard(
    scene: str,
    out: str,
    *,
    config: ScanConfig | None = None,
    scene_id: str | None = None,
    overwrite: bool = False,
) -> ScanResult:
    """Scan `scene` and commit its shard at `out` (local path or gs://).

    A committed shard at `out` is replaced only with `overwrite`, and only once the new one is
    complete; `out` holding anything else is refused before any work.
    """
    from ..models.bundled import load_models
    from ..registry.follow import follow_channel

    config = follow_channel(config or ScanConfig())
    scene_id = check_scene_id(scene_id) if scene_id else scene_id_from_name(scene)
    shard = ShardLayout(out)
    existing = read_shard(shard)
    if existing is not None and not overwrite:
        raise ConflictError(f"{out} already holds a committed scan; pass --overwrite to replace it")
    if existing is None:
        _refuse_foreign_output(out)
    discovery, impact = load_models(config.discovery_model, config.impact_model)
    result, won = scan_and_commit(scene, shard, discovery, impact, config, scene_id=scene_id,
                                  replace=overwrite)
    if not won:
        raise ConflictError(f"another worker committed {out} first; its result stands")
    return result


def _refuse_foreign_output(out: str) -> None:
    """Refuse, before scanning, an output that holds files minescan did not commit."""
    if not storage.is_remote(out) and Path(out).exists() and not Path(out).is_dir():
        raise ConflictError(f"{out} is a file, not a directory: choose a new or empty --out directory")
    names = [n for n in storage.list_dir(out) if n != commit.ATTEMPTS]
    if names:
        raise ConflictError(
            f"{out} is not empty and is not a minescan shard (it holds {', '.join(names[:3])}"
            f"{' …' if len(names) > 3 else ''}); minescan never deletes what it did not write: "
            "choose a new or empty --out directory"
        )
