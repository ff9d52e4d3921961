"""Submitting, polling, retrying and resuming exports, against a fake Earth Engine REST API.

Only the HTTP layer is fake: the real earthengine-api client (its discovery document, request
encoding and error handling, via `ee.apitestcase.UsingCloudApi`) sends the requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httplib2
import pytest
import shapely
from minescan.acquire import session
from minescan.acquire.config import CompositeConfig, ExportConfig
from minescan.acquire.plan import Plan, plan_scenes
from minescan.acquire.run import execute
from minescan.acquire.tasks import (
    EarthEngineTasks,
    RunnerConfig,
    list_objects,
    run_jobs,
)
from minescan.batch import grid
from minescan.batch.manifest import read_manifest
from minescan.errors import TransientError

pytest_plugins = ["tests.gcs_emulator"]

DESTINATION = "gs://minescan-test/s2/2019"


class FakeEarthEngine:
    """The three REST calls the runner makes: image:export, operations.get, operations.list.

    An operation succeeds on its `polls_to_finish`-th status call, unless its description is
    in `fail` (then it fails, that many times over).
    """

    def __init__(self, polls_to_finish: int = 2, fail: dict[str, int] | None = None,
                 reject: dict[str, int] | None = None, listed: list[dict] | None = None) -> None:
        self.polls_to_finish = polls_to_finish
        self.fail = dict(fail or {})
        self.reject = dict(reject or {})
        self.listed = list(listed or [])
        self.submitted: list[dict[str, Any]] = []
        self.ops: dict[str, dict[str, Any]] = {}
        self.max_active = 0

    def request(self, uri: str, method: str = "GET", body: str | None = None,
                headers: Any = None, **_: Any) -> tuple[httplib2.Response, bytes]:
        path = urlparse(uri).path
        if method == "POST" and path.endswith("/image:export"):
            return self._export(json.loads(body))
        if method == "GET" and path.endswith("/operations"):
            return self._ok({"operations": self.listed})
        if method == "GET" and "/operations/" in path:
            return self._poll(path.split("/v1alpha/", 1)[1])
        raise AssertionError(f"unexpected call {method} {uri}")

    def _export(self, body: dict[str, Any]) -> tuple[httplib2.Response, bytes]:
        description = body["description"]
        if self.reject.get(description, 0) > 0:
            self.reject[description] -= 1
            return self._error(400, "Too many tasks already in the queue (3000). Please wait.")
        self.submitted.append(body)
        name = f"projects/minescan-dry-run/operations/OP{len(self.submitted)}"
        failing = self.fail.get(description, 0) > 0
        if failing:
            self.fail[description] -= 1
        self.ops[name] = {"description": description, "polls": 0, "fails": failing, "done": False}
        self.max_active = max(self.max_active, sum(not o["done"] for o in self.ops.values()))
        return self._ok({"name": name, "metadata": {"state": "PENDING", "description": description}})

    def _poll(self, name: str) -> tuple[httplib2.Response, bytes]:
        op = self.ops[name]
        op["polls"] += 1
        meta = {"description": op["description"], "state": "RUNNING"}
        if op["polls"] >= self.polls_to_finish:
            op["done"] = True
            if op["fails"]:
                meta["state"] = "FAILED"
                return self._ok({"name": name, "done": True, "metadata": meta,
                                 "error": {"code": 13, "message": "Internal error."}})
            meta["state"] = "SUCCEEDED"
            return self._ok({"name": name, "done": True, "metadata": meta})
        return self._ok({"name": name, "metadata": meta})

    @staticmethod
    def _ok(payload: dict[str, Any]) -> tuple[httplib2.Response, bytes]:
        return httplib2.Response({"status": 200, "content-type": "application/json"}), json.dumps(payload).encode()

    @staticmethod
    def _error(status: int, message: str) -> tuple[httplib2.Response, bytes]:
        payload = {"error": {"code": status, "message": message, "status": "FAILED_PRECONDITION"}}
        return (httplib2.Response({"status": status, "content-type": "application/json"}),
                json.dumps(payload).encode())


@pytest.fixture()
def ee_offline() -> Iterator[None]:
    with session.offline():
        yield


def four_scene_plan(manifest_uri: str | None = None, destination: str = DESTINATION) -> Plan:
    """A small AOI around the corner shared by four scenes' owned areas."""
    b = grid.owned_bounds(grid.scene(121, 146))
    aoi = shapely.box(b.east - 0.05, b.south - 0.05, b.east + 0.05, b.south + 0.05)
    return plan_scenes(aoi, CompositeConfig(), ExportConfig(destination=destination), manifest_uri)


@pytest.fixture()
def fake(ee_offline) -> Iterator[FakeEarthEngine]:
    from ee import apitestcase

    server = FakeEarthEngine()
    with apitestcase.UsingCloudApi(mock_http=server):
        yield server


FAST = dict(poll_seconds=0.0, sleep=lambda s: None)


def test_every_scene_is_submitted_once_and_polled_to_completion(fake) -> None:
    plan = four_scene_plan()
    assert len(plan.jobs) == 4
    results = list(run_jobs(plan.jobs, EarthEngineTasks(), set(), RunnerConfig(**FAST)))
    assert sorted(r.job.key for r in results) == sorted(j.key for j in plan.jobs)
    assert {r.state for r in results} == {"completed"}
    assert len(fake.submitted) == 4


def test_what_is_sent_is_the_planned_request(fake) -> None:
    plan = four_scene_plan()
    list(run_jobs(plan.jobs[:1], EarthEngineTasks(), set(), RunnerConfig(**FAST)))
    (sent,) = fake.submitted
    assert sent.pop("requestId")
    assert sent == plan.jobs[0].request


def test_submission_stays_under_the_concurrency_cap(fake) -> None:
    plan = four_scene_plan()
    fake.polls_to_finish = 3
    results = list(run_jobs(plan.jobs, EarthEngineTasks(), set(), RunnerConfig(max_concurrent=2, **FAST)))
    assert len(results) == 4 and fake.max_active == 2


def test_a_failed_task_is_resubmitted_and_can_succeed(fake) -> None:
    plan = four_scene_plan()
    flaky = plan.jobs[1]
    fake.fail[flaky.description] = 1
    results = {r.job.key: r for r in run_jobs(plan.jobs, EarthEngineTasks(), set(), RunnerConfig(**FAST))}
    assert results[flaky.key].state == "completed" and results[flaky.key].attempts == 2
    assert len(fake.submitted) == 5


def test_a_rejected_submission_is_retried(fake) -> None:
    plan = four_scene_plan()
    fake.reject[plan.jobs[0].description] = 1
    results = list(run_jobs(plan.jobs, EarthEngineTasks(), set(), RunnerConfig(**FAST)))
    assert {r.state for r in results} == {"completed"}


def test_a_task_failing_every_retry_fails_the_run_without_a_manifest(fake, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    plan = four_scene_plan(str(manifest))
    doomed = plan.jobs[2]
    fake.fail[doomed.description] = 3
    with pytest.raises(TransientError, match=f"1 of 4 exports failed: {doomed.key}.*re-run"):
        execute(plan, EarthEngineTasks(), set(), RunnerConfig(max_retries=2, **FAST))
    assert sum(b["description"] == doomed.description for b in fake.submitted) == 3
    assert not manifest.exists()


def test_resume_skips_scenes_in_the_bucket_and_adopts_running_tasks(fake) -> None:
    plan = four_scene_plan()
    done, running = plan.jobs[0], plan.jobs[1]
    fake.ops["projects/minescan-dry-run/operations/OLD"] = {
        "description": running.description, "polls": 0, "fails": False, "done": False}
    fake.listed = [{"name": "projects/minescan-dry-run/operations/OLD",
                    "metadata": {"state": "RUNNING", "description": running.description}},
                   {"name": "projects/minescan-dry-run/operations/OTHER", "done": True,
                    "metadata": {"state": "SUCCEEDED", "description": plan.jobs[2].description}}]
    results = {r.job.key: r.state for r in
               run_jobs(plan.jobs, EarthEngineTasks(), {done.object_uri}, RunnerConfig(**FAST))}
    assert results == {done.key: "skipped", running.key: "completed",
                       plan.jobs[2].key: "completed", plan.jobs[3].key: "completed"}
    assert sorted(b["description"] for b in fake.submitted) == sorted(
        [plan.jobs[2].description, plan.jobs[3].description])


def test_success_writes_a_manifest_the_map_job_reads(fake, tmp_path: Path) -> None:
    plan = four_scene_plan(str(tmp_path / "manifest.json"))
    counts = execute(plan, EarthEngineTasks(), set(), RunnerConfig(**FAST))
    assert counts == {"completed": 4}
    manifest = read_manifest(tmp_path / "manifest.json")
    assert [s.uri for s in manifest.scenes] == [j.object_uri for j in plan.jobs]
    assert manifest.grid.stride_px == 27 and manifest.grid.overlap_px == 216
    assert read_manifest(tmp_path / "manifest.txt").scenes[0].uri == plan.jobs[0].object_uri


def test_resume_lists_the_real_bucket(fake, gcs_emulator) -> None:
    import fsspec

    bucket = gcs_emulator.make_bucket()
    plan = four_scene_plan(f"{bucket}/s2/manifest.json", destination=f"{bucket}/s2")
    with fsspec.open(plan.jobs[3].object_uri, "wb") as f:
        f.write(b"II*\x00")
    existing = list_objects(f"{bucket}/s2")
    assert existing == {plan.jobs[3].object_uri}
    counts = execute(plan, EarthEngineTasks(), existing, RunnerConfig(**FAST))
    assert counts == {"completed": 3, "skipped": 1}
    assert len(read_manifest(f"{bucket}/s2/manifest.json").scenes) == 4


def test_listing_a_missing_prefix_is_empty(tmp_path: Path) -> None:
    assert list_objects(str(tmp_path / "nothing")) == set()
