"""Drive export tasks to the end: submit under a concurrency cap, poll, retry, resume.

Earth Engine runs a project's batch tasks a few at a time and queues the rest, and a task
can fail for reasons that go away (a busy backend, a worker lost). The runner keeps at
most `max_concurrent` of this run's tasks unfinished, polls them, resubmits a failed one
up to `max_retries` times, and yields every job as it finishes, so the caller can show
progress. It is resumable: jobs whose files are already in the bucket are skipped, and
tasks of this run still queued or running on Earth Engine (found by their description)
are adopted instead of submitted twice.

`EarthEngineTasks` is the only part that talks to Earth Engine; tests give the runner the
real one over a mocked HTTP layer.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..errors import TransientError
from .exports import ExportJob

log = logging.getLogger(__name__)

#: consecutive failed status calls after which the run gives up (a dead network, not a hiccup)
MAX_POLL_FAILURES = 10

State = Literal["active", "completed", "failed"]


@dataclass(frozen=True, slots=True)
class TaskStatus:
    state: State
    error: str = ""


class TaskBackend(Protocol):
    def start(self, job: ExportJob) -> str:
        """Submit `job`; return the operation name to poll."""

    def status(self, operation: str) -> TaskStatus: ...

    def active(self) -> dict[str, str]:
        """Description → operation name of this project's queued or running tasks."""


class EarthEngineTasks:
    """`TaskBackend` over an initialised Earth Engine client."""

    def start(self, job: ExportJob) -> str:
        import ee

        body = copy.deepcopy(job.request)
        request_id = ee.data.newTaskId()[0]
        if job.kind == "image":
            operation = ee.data.exportImage(request_id, body)
        else:
            operation = ee.data.exportTable(request_id, body)
        return operation["name"]

    def status(self, operation: str) -> TaskStatus:
        import ee

        return operation_status(ee.data.getOperation(operation))

    def active(self) -> dict[str, str]:
        import ee

        found = {}
        for operation in ee.data.listOperations():
            meta = operation.get("metadata", {})
            if not operation.get("done") and meta.get("state") in ("PENDING", "RUNNING", "CANCELLING"):
                found[meta.get("description", "")] = operation["name"]
        return found


def operation_status(operation: dict) -> TaskStatus:
    """Our view of a long-running Earth Engine operation."""
    state = operation.get("metadata", {}).get("state")
    if state == "SUCCEEDED":
        return TaskStatus("completed")
    if state in ("FAILED", "CANCELLED") or (operation.get("done") and "error" in operation):
        return TaskStatus("failed", operation.get("error", {}).get("message", str(state)))
    return TaskStatus("active")


@dataclass(frozen=True)
class JobResult:
    job: ExportJob
    state: Literal["completed", "skipped", "failed"]
    attempts: int = 0
    error: str = ""


@dataclass(frozen=True)
class _Running:
    job: ExportJob
    operation: str
    attempts: int


@dataclass(frozen=True)
class RunnerConfig:
    max_concurrent: int = 10
    poll_seconds: float = 30.0
    max_retries: int = 2
    sleep: Callable[[float], None] = field(default=time.sleep)


def is_exported(job: ExportJob, existing: set[str]) -> bool:
    """True when the bucket holds the job's file (or the tiles Earth Engine splits it into)."""
    stem = job.object_uri.rsplit(".", 2)[0] if job.object_uri.endswith(".tfrecord.gz") \
        else job.object_uri.rsplit(".", 1)[0]
    return job.object_uri in existing or any(name.startswith(stem + "-") for name in existing)


def run_jobs(
    jobs: Iterable[ExportJob],
    backend: TaskBackend,
    existing: set[str],
    cfg: RunnerConfig,
) -> Iterator[JobResult]:
    """Yield a result per job as it finishes; see the module docstring."""
    queue: deque[tuple[ExportJob, int]] = deque()
    running: list[_Running] = []
    active = backend.active()
    for job in jobs:
        if is_exported(job, existing):
            yield JobResult(job, "skipped")
        elif job.description in active:
            log.info("adopting running task", extra={"key": job.key})
            running.append(_Running(job, active[job.description], 1))
        else:
            queue.append((job, 0))
    poll_failures, finished, last_counts = 0, 0, None
    while queue or running:
        while queue and len(running) < cfg.max_concurrent:
            job, attempts = queue.popleft()
            try:
                running.append(_Running(job, backend.start(job), attempts + 1))
            except Exception as exc:  # the client raises EEException, HttpError, OSError...
                result = _retry_or_fail(job, attempts + 1, f"submit failed: {exc}", queue, cfg)
                if result:
                    finished += 1
                    yield result
                # a rejected submission (often "too many tasks") waits a poll before the next
                break
        if not (queue or running):
            break
        cfg.sleep(cfg.poll_seconds)
        still: list[_Running] = []
        for task in running:
            try:
                status = backend.status(task.operation)
                poll_failures = 0
            except Exception as exc:
                poll_failures += 1
                if poll_failures >= MAX_POLL_FAILURES:
                    raise TransientError(f"cannot poll Earth Engine tasks ({exc}); re-run to resume") from exc
                still.append(task)
                continue
            if status.state == "completed":
                finished += 1
                yield JobResult(task.job, "completed", task.attempts)
            elif status.state == "failed":
                result = _retry_or_fail(task.job, task.attempts, status.error, queue, cfg)
                if result:
                    finished += 1
                    yield result
            else:
                still.append(task)
        running = still
        counts = (len(running), len(queue), finished)
        if counts != last_counts:
            log.info("exports: %d running, %d queued, %d finished", *counts)
            last_counts = counts


def _retry_or_fail(job: ExportJob, attempts: int, error: str, queue: deque, cfg: RunnerConfig) -> JobResult | None:
    if attempts <= cfg.max_retries:
        log.warning("export failed, retrying", extra={"key": job.key, "attempt": attempts, "error": error})
        queue.append((job, attempts))
        return None
    log.error("export failed for good", extra={"key": job.key, "attempts": attempts, "error": error})
    return JobResult(job, "failed", attempts, error)


def list_objects(destination: str) -> set[str]:
    """Full URIs of every object under `destination` (gs:// or local), empty if none."""
    from .. import storage

    return set(storage.find(destination))