"""Every path of a run and of a shard, spelled in one place.

    <run>/run.json                 pinned by the first map: config, manifest, model versions
    <run>/channel.json             a run that follows a registry channel: the pointer it took
    <run>/scenes/<scene_id>/       one shard per scene, committed whole or absent
    <run>/national/                the reduce's national outputs, committed like a shard
                                   (sites in every format, detections.parquet, summary.json)

    <shard>/_SUCCESS.json          the commit marker, written last (see `batch.commit`)
    <shard>/probability.zarr       p(mine) per output cell (zarr v3)
    <shard>/detections.parquet     GeoParquet 1.1 points; .csv and .kml for people

Scene ids become path segments, so they follow one pattern (`SCENE_ID_PATTERN`) checked when
a manifest is read and when `--scene-id` is given, before any work; `storage.join` refuses
anything that would climb out of the run besides. docs/ARCHITECTURE.md, "Data contracts".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import storage
from ..errors import InputError

#: the commit marker of every committed directory, and where Cloud Storage attempts go
MARKER = "_SUCCESS.json"
ATTEMPTS = "attempts"
#: letters, digits, '.', '_' and '-'; starts with a letter or digit (so never '.' or '..');
#: at most 128 characters, well inside every file system's and Cloud Storage's name limits
SCENE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_SCENE_ID = re.compile(SCENE_ID_PATTERN)


def check_scene_id(scene_id: str) -> str:
    """`scene_id` if it matches `SCENE_ID_PATTERN`, else an `InputError` saying what to do."""
    if not isinstance(scene_id, str) or not _SCENE_ID.fullmatch(scene_id):
        shown = scene_id if len(str(scene_id)) <= 60 else f"{str(scene_id)[:57]}..."
        raise InputError(
            f"scene id {shown!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return scene_id


def scene_id_from_name(name: str) -> str:
    """A valid scene id from a file name or URI: its stem, other characters made '_'."""
    stem = name.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".tif", ".tiff", ".TIF", ".TIFF", ".vrt"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip("._-")[:128]
    return check_scene_id(clean or "scene")


@dataclass(frozen=True)
class ShardLayout:
    """The files of one scene shard under `root` (local path or gs:// URI)."""

    root: str

    MARKER = MARKER
    PROBABILITY = "probability.zarr"
    PROBABILITY_COG = "probability.tif"  # the same grid as a Cloud-Optimized GeoTIFF, for any GIS
    DETECTIONS_PARQUET = "detections.parquet"
    DETECTIONS_CSV = "detections.csv"
    DETECTIONS_KML = "detections.kml"

    @property
    def marker(self) -> str:
        return storage.join(self.root, self.MARKER)


class NationalLayout:
    """File names of a run's national set, beside the site files `outputs.SITE_FILES` names."""

    DETECTIONS = "detections.parquet"
    SUMMARY = "summary.json"


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run under `root` (local path or gs:// URI)."""

    root: str

    RUN_FILE = "run.json"
    CHANNEL_FILE = "channel.json"
    SCENES = "scenes"
    NATIONAL = "national"

    @property
    def run_json(self) -> str:
        return storage.join(self.root, self.RUN_FILE)

    @property
    def channel_json(self) -> str:
        return storage.join(self.root, self.CHANNEL_FILE)

    @property
    def scenes(self) -> str:
        return storage.join(self.root, self.SCENES)

    @property
    def national(self) -> str:
        return storage.join(self.root, self.NATIONAL)

    def shard(self, scene_id: str) -> ShardLayout:
        return ShardLayout(storage.join(self.scenes, check_scene_id(scene_id)))
