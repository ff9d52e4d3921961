"""Storage API and shard commit protocol, on local disk and on a real Cloud Storage emulator."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc
from minescan import storage
from minescan.errors import EXIT_TRANSIENT, InputError, TransientError
from minescan.storage import NotFoundError, RetryPolicy

from tests.helpers import race, shard_like_tree

pytest_plugins = ["tests.gcs_emulator"]

FAST = RetryPolicy(attempts=3, initial_s=0.01, max_s=0.02)


# ---------------------------------------------------------------- URIs and environment


def test_join_keeps_scheme_and_never_resets_the_base() -> None:
    assert storage.join("gs://b/run/", "scenes", "/s1/", "_SUCCESS.json") == (
        "gs://b/run/scenes/s1/_SUCCESS.json"
    )
    assert storage.join("gs://b", "x") == "gs://b/x"
    assert storage.join("/tmp/run", "/scenes", ".") == "/tmp/run/scenes"
    assert storage.is_remote("gs://b/x") and not storage.is_remote("/gs://b")
    with pytest.raises(InputError, match="s3://"):
        storage.join("s3://b/x", "y")


def test_storage_env_reads_emulator_project_and_attempts_from_one_mapping() -> None:
    env = storage.storage_env(
        {"STORAGE_EMULATOR_HOST": "localhost:9023/", "MINESCAN_STORAGE_ATTEMPTS": "7"}
    )
    assert env.emulator_host == "http://localhost:9023"
    assert env.project == storage.EMULATOR_PROJECT
    assert env.retry.attempts == 7
    assert storage.storage_env({}) == storage.StorageEnv()
    with pytest.raises(InputError, match="MINESCAN_STORAGE_ATTEMPTS"):
        storage.storage_env({"MINESCAN_STORAGE_ATTEMPTS": "0"})


def test_hash_tree_is_sha256_by_posix_relative_path(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.bin").write_bytes(b"abc")
    (tmp_path / "top.txt").write_bytes(b"")
    assert storage.hash_tree(tmp_path) == {
        "a/b/x.bin": hashlib.sha256(b"abc").hexdigest(),
        "top.txt": hashlib.sha256(b"").hexdigest(),
    }


# ---------------------------------------------------------------- objects and trees


def test_bytes_text_and_trees_round_trip(root: str, tmp_path: Path) -> None:
    uri = storage.join(root, "dir", "a.bin")
    assert not storage.exists(uri)
    storage.write_bytes(uri, b"\x00\x01payload")
    storage.write_text(storage.join(root, "dir", "b.txt"), "héllo")
    assert storage.read_bytes(uri) == b"\x00\x01payload"
    assert storage.read_text(storage.join(root, "dir", "b.txt")) == "héllo"
    storage.write_bytes(uri, b"replaced")
    assert storage.read_bytes(uri) == b"replaced"
    assert storage.list_dir(storage.join(root, "dir")) == ["a.bin", "b.txt"]

    tree = shard_like_tree(tmp_path, "t")
    storage.put_dir(tree, storage.join(root, "tree"))
    listing = storage.list_dir(storage.join(root, "tree"))
    assert listing == ["detections.parquet", "probability.zarr"]
    storage.get_dir(storage.join(root, "tree"), tmp_path / "back")
    assert storage.hash_tree(tmp_path / "back") == storage.hash_tree(tree)

    storage.rm_tree(storage.join(root, "tree"))
    storage.rm_tree(storage.join(root, "tree"))  # missing is fine
    assert not storage.exists(storage.join(root, "tree"))
    assert storage.list_dir(storage.join(root, "tree")) == []
    assert storage.exists(uri), "rm_tree of one prefix touched a sibling"


def test_missing_object_is_not_found_input_error(root: str) -> None:
    with pytest.raises(NotFoundError, match="does not exist") as info:
        storage.read_bytes(storage.join(root, "nope.json"))
    assert isinstance(info.value, InputError) and isinstance(info.value, FileNotFoundError)


def test_missing_bucket_is_a_permanent_error_not_retried(gcs_emulator) -> None:
    with pytest.raises(InputError):
        storage.write_bytes("gs://no-such-bucket-minescan/x", b"1")


def test_rm_tree_refuses_a_whole_bucket(gcs_emulator) -> None:
    bucket = gcs_emulator.make_bucket()
    storage.write_bytes(storage.join(bucket, "keep"), b"1")
    with pytest.raises(InputError, match="whole bucket"):
        storage.rm_tree(bucket)
    assert storage.exists(storage.join(bucket, "keep"))


# ---------------------------------------------------------------- create-only


def test_create_only_second_call_returns_false_and_keeps_content(root: str) -> None:
    uri = storage.join(root, "run.json")
    assert storage.create_only(uri, b"first") is True
    assert storage.create_only(uri, b"second") is False
    assert storage.read_bytes(uri) == b"first"
    assert storage.list_dir(root) == ["run.json"], "a temp file was left beside the object"


def test_racing_create_only_has_exactly_one_winner(root: str) -> None:
    uri = storage.join(root, "lock.json")
    results = race(6, lambda i: storage.create_only(uri, f"worker {i}".encode()))
    assert sorted(results) == [False] * 5 + [True]
    assert storage.read_bytes(uri) == f"worker {results.index(True)}".encode()


# ---------------------------------------------------------------- compare-and-swap


def test_replace_if_generation_writes_only_over_the_generation_it_read(root: str) -> None:
    uri = storage.join(root, "channels", "prod")
    assert storage.read_with_generation(uri) == (None, 0)
    assert storage.replace_if_generation(uri, b"one", 0) is True
    data, first = storage.read_with_generation(uri)
    assert data == b"one" and first > 0
    assert storage.replace_if_generation(uri, b"stale", 0) is False, "0 means: only if absent"
    assert storage.replace_if_generation(uri, b"two", first) is True
    data, second = storage.read_with_generation(uri)
    assert data == b"two" and second != first
    assert storage.replace_if_generation(uri, b"late", first) is False, "an old generation must lose"
    assert storage.read_with_generation(uri) == (b"two", second)


def test_racing_compare_and_swap_has_exactly_one_winner(root: str) -> None:
    uri = storage.join(root, "channels", "prod")
    storage.replace_if_generation(uri, b"start", 0)
    _, generation = storage.read_with_generation(uri)
    results = race(6, lambda i: storage.replace_if_generation(uri, f"writer {i}".encode(), generation))
    assert sorted(results) == [False] * 5 + [True]
    assert storage.read_with_generation(uri)[0] == f"writer {results.index(True)}".encode()


def test_readers_during_swaps_see_whole_contents_only(root: str) -> None:
    uri = storage.join(root, "pointer")
    payloads = [json.dumps({"seq": i, "pad": "x" * 20000}).encode() for i in range(6)]
    storage.replace_if_generation(uri, payloads[0], 0)
    seen: list[bytes] = []
    done = threading.Event()

    def read_until_done() -> None:
        while not done.is_set():
            seen.append(storage.read_with_generation(uri)[0])

    reader = threading.Thread(target=read_until_done)
    reader.start()
    try:
        for payload in payloads[1:]:
            _, generation = storage.read_with_generation(uri)
            assert storage.replace_if_generation(uri, payload, generation)
    finally:
        done.set()
        reader.join(timeout=30)
    assert seen and set(seen) <= set(payloads)


# ---------------------------------------------------------------- retries


class Flaky:
    """A storage call that fails with `error` `failures` times, then returns "ok"."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_transient_errors_are_retried_with_growing_backoff() -> None:
    flaky = Flaky(2, gexc.ServiceUnavailable("backend down"))
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=3, initial_s=1.0, max_s=10.0)
    assert storage.retry_call(flaky, "gs://b/k", policy=policy, sleep=sleeps.append) == "ok"
    assert flaky.calls == 3
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


@pytest.mark.parametrize(
    "error",
    [
        gexc.TooManyRequests("slow down"),
        gexc.InternalServerError("oops"),
        gexc.GatewayTimeout("late"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError("read timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_error_after_the_budget_names_the_uri(error: Exception) -> None:
    flaky = Flaky(10, error)
    with pytest.raises(TransientError, match="gs://b/scenes/s1/_SUCCESS.json") as info:
        storage.retry_call(flaky, "gs://b/scenes/s1/_SUCCESS.json", "create", FAST, lambda s: None)
    assert flaky.calls == FAST.attempts
    assert info.value.exit_code == EXIT_TRANSIENT
    assert info.value.__cause__ is error


def test_gcsfs_http_errors_are_classified_by_status() -> None:
    from gcsfs.retry import HttpError

    assert storage.classify_error(HttpError({"code": 503, "message": "x"})) == "transient"
    assert storage.classify_error(HttpError({"code": 429, "message": "x"})) == "transient"
    assert storage.classify_error(HttpError({"code": 403, "message": "x"})) == "permanent"
    assert storage.classify_error(OSError("Forbidden: b/o\nno access")) == "permanent"
    assert storage.classify_error(KeyError("bug")) is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (gexc.Forbidden("no storage.objects.get"), InputError),
        (gexc.BadRequest("bad name"), InputError),
        (gexc.NotFound("no such object"), NotFoundError),
    ],
    ids=lambda e: getattr(e, "__name__", type(e).__name__),
)
def test_permanent_errors_fail_at_once(error: Exception, expected: type) -> None:
    flaky = Flaky(10, error)
    with pytest.raises(expected, match="gs://b/k"):
        storage.retry_call(flaky, "gs://b/k", policy=FAST, sleep=lambda s: None)
    assert flaky.calls == 1


def test_a_bug_is_not_disguised_as_a_storage_error() -> None:
    flaky = Flaky(10, KeyError("typo"))
    with pytest.raises(KeyError):
        storage.retry_call(flaky, "gs://b/k", policy=FAST, sleep=lambda s: None)
    assert flaky.calls == 1


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(attempts=10, initial_s=1.0, max_s=8.0)
    assert policy.delay(10, rng=lambda: 1.0) == 8.0
    assert policy.delay(10, rng=lambda: 0.0) == 4.0
    assert policy.delay(0, rng=lambda: 0.5) == 0.75


def test_unreachable_storage_raises_transient_error_through_the_real_client(
    gcs_emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = gcs_emulator.make_bucket()
    with socket.socket() as sock:  # a port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", dead)
    monkeypatch.setenv("MINESCAN_STORAGE_ATTEMPTS", "2")
    uri = storage.join(bucket, "run.json")
    with pytest.raises(TransientError, match=f"{uri} after 2 tries"):
        storage.create_only(uri, b"x")
