"""Library entry points that the CLI verbs and the Kubernetes pods call."""

from __future__ import annotations

import logging
import tempfile

from .config import ScanConfig
from .errors import ConflictError
from .scan import ScanResult, scan_scene
from .scene import scene_id_from_path

log = logging.getLogger(__name__)


def scan_to_shard(
    scene: str,
    shard_uri: str,
    *,
    config: ScanConfig | None = None,
    scene_id: str | None = None,
    overwrite: bool = False,
    models=None,
) -> ScanResult:
    """Scan `scene` and commit its shard at `shard_uri` (local path or gs://)."""
    from . import storage
    from .defaults import load_models
    from .shard import commit_shard

    config = config or ScanConfig()
    if storage.read_shard(shard_uri) is not None:
        if not overwrite:
            raise ConflictError(
                f"{shard_uri} already holds a committed scan; pass --overwrite to replace it"
            )
        storage.rm_tree(shard_uri)
    discovery, impact = models or load_models(config.discovery_model, config.impact_model)
    with tempfile.TemporaryDirectory(prefix="minescan-scan-") as tmp:
        local = str(storage.localize(scene, tmp))
        result = scan_scene(local, discovery, impact, config,
                            scene_id=scene_id or scene_id_from_path(scene))
    if not commit_shard(result, shard_uri, config, source=scene):
        raise ConflictError(f"another worker committed {shard_uri} first; its result stands")
    return result
