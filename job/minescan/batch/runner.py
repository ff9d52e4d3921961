"""A run: many scenes mapped to shards (one pod each), then reduced to national sites.

    <run>/run.json                 pinned at the first map: config, manifest, model hashes
    <run>/scenes/<scene_id>/       one shard per scene (see `shard`), committed or absent
    <run>/national/                sites (GeoParquet, GeoJSON, KML, CSV), map.html, summary

Every worker rebuilds itself from run.json: a pod whose config or models differ from the
run's refuses to write into it (`ConflictError`), so one run never mixes two models.
Mapping a committed scene again is a no-op, so any index can be retried safely.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__, storage
from ..errors import PERMANENT_EXIT_CODES, ConflictError, InputError
from ..scan.config import ScanConfig

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
SCENES_DIR = "scenes"
NATIONAL_DIR = "national"
#: the variable Kubernetes sets in each pod of an Indexed Job
INDEX_ENV = "JOB_COMPLETION_INDEX"


def index_from_env(environ: os._Environ | dict | None = None) -> int | None:
    """The pod's completion index, or None outside an Indexed Job."""
    value = (os.environ if environ is None else environ).get(INDEX_ENV)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{INDEX_ENV}={value!r} is not an integer index") from None


def shard_uri(run: str, scene_id: str) -> str:
    return storage.join(run, SCENES_DIR, scene_id)


def run_record(manifest, manifest_uri: str, config: ScanConfig, models: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """What run.json pins: everything that must be equal for two shards to be comparable.

    `models` maps kind → (verified ModelCard, where the model directory came from).
    """
    manifest_json = json.loads(manifest.model_dump_json())
    return {
        "minescan_version": __version__,
        "manifest_uri": manifest_uri,
        "manifest_sha256": hashlib.sha256(
            json.dumps(manifest_json, sort_keys=True).encode()
        ).hexdigest(),
        "manifest": manifest_json,
        "config": config.model_dump(mode="json"),
        "models": {
            kind: {"ref": card.ref, "sha256": card.weights_sha256, "path": source}
            for kind, (card, source) in models.items()
        },
    }


_PINNED = ("manifest_sha256", "config", "models.discovery.sha256", "models.impact.sha256")


def _get(record: dict, dotted: str):
    for key in dotted.split("."):
        record = record.get(key, {}) if isinstance(record, dict) else {}
    return record


def pin_run(run: str, record: dict[str, Any]) -> dict[str, Any]:
    """Create run.json, or check this worker agrees with the one already there."""
    uri = storage.join(run, RUN_FILE)
    if storage.create_only(uri, json.dumps(record, indent=2, sort_keys=True).encode()):
        return record
    existing = json.loads(storage.read_text(uri))
    differ = [key for key in _PINNED if _get(existing, key) != _get(record, key)]
    if differ:
        raise ConflictError(
            f"{uri} was started with a different {', '.join(differ)}; this worker would mix "
            "results. Use a new --out run, or the run's own config and models."
        )
    return existing


def read_run(run: str) -> dict[str, Any]:
    uri = storage.join(run, RUN_FILE)
    try:
        return json.loads(storage.read_text(uri))
    except storage.NotFoundError:
        raise InputError(f"{run} is not a minescan run: {uri} is missing (run `minescan map` first)") from None


@dataclass(frozen=True)
class MapOutcome:
    scene_id: str
    shard: str
    status: str  # "committed", "skipped" (already committed), "lost-race"
    counts: dict[str, int]


def map_scene(
    manifest_uri: str,
    run: str,
    index: int,
    *,
    config: ScanConfig | None = None,
) -> MapOutcome:
    """Scan scene `index` of the manifest into the run, unless it is already committed."""
    from ..models.bundled import load_models, resolve_models
    from ..models.card import verified_card
    from ..models.registry import follow_channel
    from .api import scan_and_commit
    from .manifest import read_manifest

    manifest = read_manifest(manifest_uri)
    if not 0 <= index < len(manifest.scenes):
        raise InputError(
            f"index {index} is outside the manifest's {len(manifest.scenes)} scenes (0..{len(manifest.scenes) - 1})"
        )
    entry = manifest.scenes[index]
    # A config that follows a registry channel gets the versions this run pinned.
    config = follow_channel(config or ScanConfig(), run)
    # Cards and hashes are enough to pin the run; Keras is loaded only if there is work,
    # so re-running a committed index takes seconds.
    sources = dict(zip(("discovery", "impact"), resolve_models(config.discovery_model, config.impact_model)))
    models = {kind: (verified_card(src, kind=kind)[0], src) for kind, src in sources.items()}
    pin_run(run, run_record(manifest, manifest_uri, config, models))
    target = shard_uri(run, entry.id)
    committed = storage.read_shard(target)
    if committed is not None:
        log.info("shard already committed, skipping", extra={"scene_id": entry.id, "shard": target})
        return MapOutcome(entry.id, target, "skipped", committed.success.get("counts", {}))
    storage.clean_uncommitted(target)
    discovery, impact = load_models(config.discovery_model, config.impact_model)
    scan_config = config.model_copy(update={"grid": manifest.grid})
    result, won = scan_and_commit(entry.uri, target, discovery, impact, scan_config, scene_id=entry.id)
    status = "committed" if won else "lost-race"
    log.info("map done", extra={"scene_id": entry.id, "status": status, **result.counts})
    return MapOutcome(entry.id, target, status, result.counts)


@dataclass(frozen=True)
class ReduceOutcome:
    national: str
    n_scenes: int
    missing: tuple[str, ...]
    n_detections: int
    n_sites: int
    files: dict[str, str]


def collect_detections(run: str, allow_missing: bool = False):
    """(detections from every committed shard, scene shapes, missing scene ids)."""
    import pandas as pd

    from ..outputs import coerce_detections, empty_detections, read_detections
    from .shard import DETECTIONS_PARQUET

    record = read_run(run)
    scene_ids = [s["id"] for s in record["manifest"]["scenes"]]
    tables, shapes, missing = [], {}, []
    with tempfile.TemporaryDirectory(prefix="minescan-reduce-") as tmp:
        for k, scene_id in enumerate(scene_ids):
            shard = storage.read_shard(shard_uri(run, scene_id))
            if shard is None:
                missing.append(f"{k}:{scene_id}")
                continue
            shapes[scene_id] = tuple(shard.success["cell_shape"])
            local = Path(tmp) / f"{scene_id}.parquet"
            local.write_bytes(storage.read_bytes(storage.join(shard.data_uri, DETECTIONS_PARQUET)))
            tables.append(read_detections(local))
    if missing and not allow_missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        raise InputError(
            f"{len(missing)} of {len(scene_ids)} scenes have no committed shard (index:id {shown}); "
            "re-run those map indices, or pass --allow-missing to reduce without them"
        )
    frames = [t for t in tables if len(t)]
    detections = coerce_detections(pd.concat(frames, ignore_index=True)) if frames else empty_detections()
    return detections, shapes, tuple(missing), record


def reduce_run(run: str, *, allow_missing: bool = False, link_m: float | None = None) -> ReduceOutcome:
    """Merge committed shards into national sites under `<run>/national/`."""
    from ..outputs import write_detections_geoparquet, write_sites
    from ..sites.cluster import DEFAULT_LINK_M, build_sites, dedupe_cells

    started = time.perf_counter()
    detections, shapes, missing, record = collect_detections(run, allow_missing)
    unique = dedupe_cells(detections, shapes)
    sites, dets = build_sites(unique, link_m or DEFAULT_LINK_M)
    summary = {
        "run": run,
        "scenes": len(record["manifest"]["scenes"]),
        "scenes_reduced": len(shapes),
        "scenes_missing": list(missing),
        "detections": int(len(detections)),
        "detections_unique_cells": int(len(unique)),
        "sites": int(len(sites)),
        "models": {k: v["ref"] for k, v in record["models"].items()},
        "link_m": link_m or DEFAULT_LINK_M,
    }
    national = storage.join(run, NATIONAL_DIR)
    with tempfile.TemporaryDirectory(prefix="minescan-national-") as tmp:
        files = write_sites(Path(tmp), sites, title="minescan national sites", summary=summary)
        write_detections_geoparquet(Path(tmp) / "detections.parquet", dets)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        (Path(tmp) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        storage.put_dir(tmp, national)
    log.info("reduce done", extra={k: v for k, v in summary.items() if k != "scenes_missing"})
    return ReduceOutcome(
        national=national,
        n_scenes=len(shapes),
        missing=missing,
        n_detections=int(len(unique)),
        n_sites=int(len(sites)),
        files={name: storage.join(national, Path(p).name) for name, p in files.items()},
    )


def run_local(
    manifest_uri: str,
    run: str,
    *,
    parallel: int = 1,
    retries: int = 2,
    map_args: list[str] | None = None,
    allow_missing: bool = False,
    log_dir: Path | None = None,
) -> tuple[dict[int, int], ReduceOutcome]:
    """Run `minescan map` for every index as Kubernetes would (one process per index, the
    index in JOB_COMPLETION_INDEX), retrying failures that are not permanent, then reduce."""
    from ..log import progress
    from .manifest import read_manifest

    n = len(read_manifest(manifest_uri).scenes)
    base = [sys.executable, "-m", "minescan", "--log-format", "json", "map",
            "--manifest", manifest_uri, "--out", run, *(map_args or [])]
    codes: dict[int, int] = {}
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
    pending = list(range(n))
    for attempt in range(retries + 1):
        running: dict[int, subprocess.Popen] = {}
        queue = list(pending)
        done = iter(progress(range(len(queue) + 1), len(queue), f"map (try {attempt + 1})"))
        next(done)  # the bar advances when the next item is asked for: one ask per finished index
        while queue or running:
            while queue and len(running) < max(1, parallel):
                index = queue.pop(0)
                env = {**os.environ, INDEX_ENV: str(index)}
                stderr = open(Path(log_dir) / f"map-{index:05d}.log", "ab") if log_dir else None
                running[index] = subprocess.Popen(base, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
                if stderr:
                    stderr.close()
            time.sleep(0.2)
            for index, proc in list(running.items()):
                if proc.poll() is not None:
                    codes[index] = proc.returncode
                    del running[index]
                    next(done, None)
        pending = [i for i in pending if codes[i] != 0 and codes[i] not in PERMANENT_EXIT_CODES]
        if not pending:
            break
        log.warning("retrying failed map indices", extra={"indices": pending, "attempt": attempt + 1})
    failed = {i: c for i, c in codes.items() if c != 0}
    if failed and not allow_missing:
        raise InputError(
            f"map failed for indices {sorted(failed)} (exit codes {sorted(set(failed.values()))}); "
            f"see the JSON logs ({log_dir or 'stderr'}), or pass --allow-missing to reduce without them"
        )
    return codes, reduce_run(run, allow_missing=bool(failed))
