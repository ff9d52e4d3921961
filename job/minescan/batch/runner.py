"""A run: many scenes mapped to shards (one pod each), then reduced to national sites.

The run's paths are `layout.RunLayout`'s. The first map pod pins the run in `run.json`
(config, manifest, the exact model versions); a later pod whose config or models differ
refuses to write into it (`ConflictError`), so one run never mixes two models. Mapping a
committed scene again is a no-op, so any index can be retried safely. The reduce reads only
committed shards, checks every file it reads against its shard's marker, and commits the
national outputs like a shard (`batch.commit`, replace mode): the previous national set stays
readable until the new one is whole.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__, storage
from ..errors import PERMANENT_EXIT_CODES, ConflictError, InputError
from ..scan.config import ScanConfig
from . import commit
from .layout import NationalLayout, RunLayout, ShardLayout
from .shard import read_shard

if TYPE_CHECKING:
    from ..sites.footprints import SceneGrid
    from ..sites.national import SitesInputs, SitesOptions

log = logging.getLogger(__name__)

#: the variable Kubernetes sets in each pod of an Indexed Job
INDEX_ENV = "JOB_COMPLETION_INDEX"
#: shards fetched at once by the reduce (I/O bound: Cloud Storage latency, not CPU)
READ_THREADS = 8


def index_from_env(environ: os._Environ | dict | None = None) -> int | None:
    """The pod's completion index, or None outside an Indexed Job."""
    value = (os.environ if environ is None else environ).get(INDEX_ENV)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{INDEX_ENV}={value!r} is not an integer index") from None


def run_record(manifest, manifest_uri: str, config: ScanConfig, models: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """What run.json pins: everything that must be equal for two shards to be comparable.

    `models` maps kind → (verified ModelCard, where the model directory came from).
    """
    manifest_json = json.loads(manifest.model_dump_json())
    public = {**manifest_json, "scenes": [
        {**s, "uri": storage.redact(s["uri"])} for s in manifest_json["scenes"]
    ]}
    return {
        "minescan_version": __version__,
        "manifest_uri": storage.redact(manifest_uri),
        # the hash is of the manifest as given (signed URLs included); only their text is kept out
        "manifest_sha256": hashlib.sha256(
            json.dumps(manifest_json, sort_keys=True).encode()
        ).hexdigest(),
        "manifest": public,
        "config": config.model_dump(mode="json"),
        "models": {
            kind: {"ref": card.ref, "sha256": card.weights_sha256, "path": storage.redact(source)}
            for kind, (card, source) in models.items()
        },
    }


_PINNED = ("manifest_sha256", "config", "models.discovery.sha256", "models.impact.sha256")


def _get(record: dict, dotted: str):
    for key in dotted.split("."):
        record = record.get(key, {}) if isinstance(record, dict) else {}
    return record


def pin_run(run: str, record: dict[str, Any]) -> dict[str, Any]:
    """Create run.json, or check this worker agrees with the one already there.

    An existing run.json is only read, so re-checking a finished run on read-only storage works.
    """
    uri = RunLayout(run).run_json
    try:
        existing = _parse_run_json(storage.read_bytes(uri), uri)
    except storage.NotFoundError:
        if storage.create_only(uri, json.dumps(record, indent=2, sort_keys=True).encode()):
            return record
        existing = _parse_run_json(storage.read_bytes(uri), uri)
    differ = [key for key in _PINNED if _get(existing, key) != _get(record, key)]
    if differ:
        raise ConflictError(
            f"{uri} was started with a different {', '.join(differ)}; this worker would mix "
            "results. Use a new --run directory, or the run's own config and models."
        )
    return existing


def read_run(run: str) -> dict[str, Any]:
    uri = RunLayout(run).run_json
    try:
        return _parse_run_json(storage.read_bytes(uri), uri)
    except storage.NotFoundError:
        raise InputError(f"{run} is not a minescan run: {uri} is missing (run `minescan map` first)") from None


def _parse_run_json(raw: bytes, uri: str) -> dict[str, Any]:
    try:
        record = json.loads(raw)
        ok = isinstance(record, dict) and isinstance(record["manifest"]["scenes"], list)
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise InputError(f"{uri} is not a run record minescan wrote: start a new run (--out)")
    return record


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
    from ..registry.follow import follow_channel
    from .manifest import read_manifest
    from .shard import scan_and_commit

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
    shard = RunLayout(run).shard(entry.id)
    committed = read_shard(shard)
    if committed is not None:
        log.info("shard already committed, skipping", extra={"scene_id": entry.id, "shard": shard.root})
        return MapOutcome(entry.id, shard.root, "skipped", committed[1].model_extra.get("counts", {}))
    commit.clean_uncommitted(shard.root)
    discovery, impact = load_models(config.discovery_model, config.impact_model)
    scan_config = config.model_copy(update={"grid": manifest.grid})
    result, won = scan_and_commit(entry.uri, shard, discovery, impact, scan_config, scene_id=entry.id)
    status = "committed" if won else "lost-race"
    log.info("map done", extra={"scene_id": entry.id, "status": status, **result.counts})
    return MapOutcome(entry.id, shard.root, status, result.counts)


@dataclass(frozen=True)
class ReduceOutcome:
    national: str
    n_scenes: int
    missing: tuple[str, ...]
    corrupt: tuple[str, ...]
    n_detections: int
    n_sites: int
    files: dict[str, str]


@dataclass(frozen=True)
class CollectedShards:
    """What the reduce read: detections of every usable shard, and what it could not use."""

    detections: Any  # pandas.DataFrame
    scenes: dict[str, SceneGrid]  # where each scene's cells lie (shape, CRS, transform)
    committed: dict[str, commit.Committed]  # scene id → its committed shard (data location, record)
    missing: tuple[str, ...]  # "index:id" of scenes without a committed shard
    corrupt: tuple[str, ...]  # "index:id: reason" of shards that failed verification
    record: dict[str, Any]


def collect_detections(run: str, allow_missing: bool = False) -> CollectedShards:
    """Detections from every committed shard, each file checked against its marker's hash.

    A scene without a committed shard is missing; a shard whose marker is malformed or whose
    detections do not match their recorded hash is corrupt. Either fails the reduce (exit 3)
    unless `allow_missing`, which skips and lists them.
    """
    from ..outputs import detections_from_tables, read_detections_table
    from ..sites.footprints import SceneGrid

    record = read_run(run)
    layout = RunLayout(run)
    scene_ids = [s["id"] for s in record["manifest"]["scenes"]]

    def load(scene_id: str) -> tuple[str, Any]:
        try:
            found = read_shard(layout.shard(scene_id))
            if found is None:
                return "missing", None
            committed, _ = found
            data = commit.read_verified(committed, ShardLayout.DETECTIONS_PARQUET)
        except commit.CorruptError as exc:
            return "corrupt", str(exc)
        except InputError as exc:  # a malformed marker
            return "corrupt", str(exc)
        # read from the verified bytes; cast to the schema once, for all shards, below
        name = storage.redact(committed.file_uri(ShardLayout.DETECTIONS_PARQUET))
        return "ok", (committed, read_detections_table(data, name))

    tables, scenes, shards, missing, corrupt = [], {}, {}, [], []
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        results = pool.map(load, scene_ids)
        for k, (scene_id, (status, value)) in enumerate(zip(scene_ids, results)):
            if status == "missing":
                missing.append(f"{k}:{scene_id}")
            elif status == "corrupt":
                corrupt.append(f"{k}:{scene_id}: {value}")
            else:
                shards[scene_id], table = value
                scenes[scene_id] = SceneGrid.from_success(shards[scene_id].record)
                tables.append(table)
    if corrupt and not allow_missing:
        raise InputError(
            f"{len(corrupt)} committed shard(s) fail verification, first {corrupt[0]}; "
            "re-run those map indices (delete the shard first), or pass --allow-missing to skip them"
        )
    if missing and not allow_missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        raise InputError(
            f"{len(missing)} of {len(scene_ids)} scenes have no committed shard (index:id {shown}); "
            "re-run those map indices, or pass --allow-missing to reduce without them"
        )
    detections = detections_from_tables([t for t in tables if len(t)])
    return CollectedShards(detections, scenes, shards, tuple(missing), tuple(corrupt), record)


def national_inputs(run: str, shards: CollectedShards, workdir: Path):
    """({committed scene id: where its shard's data is}, the scenes' p(mine) tiles for the
    mosaic). The data location is relative to the run root for a local run (the national
    files name it relatively, so the run can be moved) and its URI for a remote one; a
    remote shard's zarr store is downloaded under `workdir`."""
    from ..outputs.rasters import scene_tile

    grid = shards.record["manifest"].get("grid") or {}
    remote = storage.is_remote(run)
    data = {scene_id: committed.data_uri if remote else os.path.relpath(committed.data_uri, run)
            for scene_id, committed in shards.committed.items()}

    def tile(scene_id: str, committed: commit.Committed) -> Any:
        offset = committed.record.get("global_offset")
        if not grid or offset is None:
            return None
        zarr = storage.localize(committed.file_uri(ShardLayout.PROBABILITY), workdir / scene_id)
        commit.verify_local_subtree(committed, ShardLayout.PROBABILITY, zarr)  # the mosaic reads it
        cog = ("/vsigs/" + committed.data_uri.removeprefix("gs://") if remote else f"../{data[scene_id]}")
        return scene_tile(
            scene_id, zarr, f"{cog}/{ShardLayout.PROBABILITY_COG}", offset=offset,
            shape=committed.record["cell_shape"], owned_offset=grid["owned_cell_offset"],
            owned_cells=grid["owned_cells"],
        )

    # downloads (a remote run) and hashes overlap, as the shards' reads do; order is kept
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        tiles = [t for t in pool.map(lambda item: tile(*item), shards.committed.items()) if t is not None]
    return data, tiles


def reduce_run(run: str, *, allow_missing: bool = False,
               sites: SitesOptions | SitesInputs | None = None) -> ReduceOutcome:
    """Merge committed shards into national sites, committed as `<run>/national/`.

    `sites` configures the sites stage (docs/SITES.md); given as loaded `SitesInputs` it
    is not read again.
    """
    from ..outputs import run_facts, write_national
    from ..sites.national import SitesInputs, build_national, load_inputs
    from .national import read_national_sites

    started = time.perf_counter()
    # every register and layer is checked before a shard is read
    inputs = sites if isinstance(sites, SitesInputs) else load_inputs(sites)
    options = inputs.options
    before = read_national_sites(options.previous) if options.previous else None
    shards = collect_detections(run, allow_missing)
    national = build_national(shards.detections, shards.scenes, inputs)
    changes = None
    if before is not None:
        from ..sites.diff import diff_sites

        changes = diff_sites(before, national.sites)
        changes.summary["before"] = storage.redact(options.previous)
    summary = {
        "run": storage.redact(run),
        "scenes": len(shards.record["manifest"]["scenes"]),
        "scenes_reduced": len(shards.scenes),
        "scenes_missing": list(shards.missing),
        "scenes_corrupt": list(shards.corrupt),
        "models": {k: v["ref"] for k, v in shards.record["models"].items()},
    }
    written: dict[str, Path] = {}

    def fill(staging: Path) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="minescan-zarr-") as work:
            data, tiles = national_inputs(run, shards, Path(work))
            facts = run_facts({**shards.record, "run": storage.redact(run)}, data,
                              title="minescan national sites", link_m=options.link_m)
            summary["synthetic"] = facts.synthetic
            files = write_national(staging, national, facts=facts, summary=summary, tiles=tiles, inputs=inputs,
                                   changes=changes.changes if changes else None,
                                   changes_summary=changes.summary if changes else None)
        written.update({name: Path(path).relative_to(staging) for name, path in files.items()})
        if changes is not None:
            summary["changes_since_previous"] = changes.summary
        summary.update(national.summary | {"sites_config": options.model_dump(mode="json"),
                                           "seconds": round(time.perf_counter() - started, 2)})
        (staging / NationalLayout.SUMMARY).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        return {"kind": "national", "minescan_version": __version__, "summary": summary}

    national_uri = RunLayout(run).national
    if commit.read_committed(national_uri) is None and [
        n for n in storage.list_dir(national_uri) if n != commit.ATTEMPTS
    ]:
        raise ConflictError(f"{national_uri} holds files without a commit marker (written by an older "
                            "minescan, or not by minescan): move it aside, then re-run the reduce")
    commit.clean_uncommitted(national_uri)
    commit.publish(national_uri, fill, replace=True)
    committed = commit.read_committed(national_uri)
    log.info("reduce done", extra={k: v for k, v in summary.items() if isinstance(v, int | float | str)})
    return ReduceOutcome(
        national=national_uri,
        n_scenes=len(shards.scenes),
        missing=shards.missing,
        corrupt=shards.corrupt,
        n_detections=len(national.detections),
        n_sites=len(national.sites),
        files={name: committed.file_uri(path.as_posix()) for name, path in written.items()},
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
    sites: SitesOptions | None = None,
) -> tuple[dict[int, int], ReduceOutcome]:
    """Run `minescan map` for every index as Kubernetes would (one process per index, the
    index in JOB_COMPLETION_INDEX), retrying failures that are not permanent, then reduce.

    The sites stage's registers and layers are read first, so a bad one fails before any
    scene is mapped."""
    from ..log import progress
    from ..sites.national import load_inputs
    from .manifest import read_manifest

    inputs = load_inputs(sites)

    n = len(read_manifest(manifest_uri).scenes)
    base = [sys.executable, "-m", "minescan", "--log-format", "json", "map",
            "--manifest", manifest_uri, "--run", run, *(map_args or [])]
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
        done.close()  # end the bar before the next try or the reduce logs anything
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
    return codes, reduce_run(run, allow_missing=bool(failed), sites=inputs)
