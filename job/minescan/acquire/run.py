"""Carry out a plan: run its exports to the end, then write its manifest or chip index."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from .. import storage
from ..batch.manifest import write_manifest
from ..errors import TransientError
from ..log import progress
from .plan import Plan
from .tasks import RunnerConfig, TaskBackend, run_jobs

log = logging.getLogger(__name__)


def execute(plan: Plan, backend: TaskBackend, existing: set[str], cfg: RunnerConfig,
            index_uri: str | None = None) -> dict[str, int]:
    """Run every export of `plan`; return counts by outcome.

    The manifest (or chip index) is written only when every export succeeded: a manifest
    with holes would send the map job to scenes that do not exist. Failures raise
    TransientError, and a re-run skips what is already in the bucket.
    """
    counts: Counter[str] = Counter()
    failed = []
    for result in progress(run_jobs(plan.jobs, backend, existing, cfg), len(plan.jobs),
                           f"{plan.kind} exports"):
        counts[result.state] += 1
        log.info("export %s", result.state, extra={"key": result.job.key, "attempts": result.attempts})
        if result.state == "failed":
            failed.append(f"{result.job.key} ({result.error})")
    if failed:
        raise TransientError(
            f"{len(failed)} of {len(plan.jobs)} exports failed: {', '.join(failed[:5])}; "
            "re-run the same command to retry them (finished ones are skipped)"
        )
    if plan.manifest is not None and plan.manifest_uri:
        json_uri, text_uri = write_manifest(plan.manifest, plan.manifest_uri)
        log.info("manifest written", extra={"uri": json_uri, "text_uri": text_uri})
    if plan.index_csv is not None and index_uri:
        storage.write_text(index_uri, plan.index_csv)
        log.info("chip index written", extra={"uri": index_uri})
    return dict(counts)


def write_plan(plan: Plan, path: str | Path) -> None:
    """The dry run's output: grid, image graph, and every export request, as JSON."""
    storage.write_text(str(path), json.dumps(plan.as_json(), indent=1))
