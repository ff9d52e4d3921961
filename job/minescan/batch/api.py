"""Library entry points that the CLI verbs and the Kubernetes pods call."""

from __future__ import annotations

import tempfile

from ..errors import ConflictError
from ..scan.config import ScanConfig
from ..scan.scanner import ScanResult, scan_scene
from ..scan.scene import scene_id_from_path


def scan_and_commit(
    scene: str, shard_uri: str, discovery, impact, config: ScanConfig, *, scene_id: str | None = None
) -> tuple[ScanResult, bool]:
    """Fetch `scene` (local or gs://), scan it, commit its shard; False if another worker
    committed the shard first. The one path both `scan` and a `map` pod take."""
    from .. import storage
    from .shard import commit_shard

    with tempfile.TemporaryDirectory(prefix="minescan-scan-") as tmp:
        local = str(storage.localize(scene, tmp))
        result = scan_scene(local, discovery, impact, config,
                            scene_id=scene_id or scene_id_from_path(scene))
    return result, commit_shard(result, shard_uri, config, source=scene)


def scan_to_shard(
    scene: str,
    shard_uri: str,
    *,
    config: ScanConfig | None = None,
    scene_id: str | None = None,
    overwrite: bool = False,
) -> ScanResult:
    """Scan `scene` and commit its shard at `shard_uri` (local path or gs://)."""
    from .. import storage
    from ..models.bundled import load_models
    from ..models.registry import follow_channel

    config = follow_channel(config or ScanConfig())
    if storage.read_shard(shard_uri) is not None:
        if not overwrite:
            raise ConflictError(
                f"{shard_uri} already holds a committed scan; pass --overwrite to replace it"
            )
        storage.rm_tree(shard_uri)
    discovery, impact = load_models(config.discovery_model, config.impact_model)
    result, won = scan_and_commit(scene, shard_uri, discovery, impact, config, scene_id=scene_id)
    if not won:
        raise ConflictError(f"another worker committed {shard_uri} first; its result stands")
    return result
