"""The commit protocol, on local disk and on a real Cloud Storage emulator: create-once
(racing writers, one wins), replace (the previous set survives any failure), verified reads,
and never touching what it did not create."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from minescan import storage
from minescan.batch import commit
from minescan.errors import ConflictError, InputError

from tests.helpers import race, shard_like_tree


def _publish(staging: Path, uri: str, replace: bool = False, **record: object) -> bool:
    return commit.publish_dir(staging, uri, record, replace=replace)


def _committed_tree(committed: commit.Committed, tmp_path: Path) -> dict[str, str]:
    local = tmp_path / f"fetched-{threading.get_ident()}-{len(list(tmp_path.iterdir()))}"
    storage.get_dir(committed.data_uri, local)
    return {k: v for k, v in storage.hash_tree(local).items() if k != commit.MARKER}


# ---------------------------------------------------------------- create-once


def test_published_directory_reads_back_whole_with_its_hashes(root: str, tmp_path: Path) -> None:
    staging = shard_like_tree(tmp_path, "a")
    uri = storage.join(root, "scenes", "s1")
    assert commit.read_committed(uri) is None
    assert _publish(staging, uri, scene="s1") is True

    committed = commit.read_committed(uri)
    assert committed is not None
    assert committed.record["scene"] == "s1"
    assert committed.files == storage.hash_tree(staging)
    assert _committed_tree(committed, tmp_path) == storage.hash_tree(staging)
    assert staging.is_dir(), "publishing consumed the caller's staging directory"


def test_publishing_a_committed_directory_again_changes_nothing(root: str, tmp_path: Path) -> None:
    uri = storage.join(root, "scenes", "s1")
    first, second = shard_like_tree(tmp_path, "a"), shard_like_tree(tmp_path, "b")
    assert _publish(first, uri, n=1)
    before = commit.read_committed(uri)
    assert _publish(second, uri, n=2) is False
    assert commit.read_committed(uri) == before
    assert storage.list_dir(storage.join(root, "scenes")) == ["s1"]


def test_racing_publishers_one_commits_and_losers_leave_nothing(root: str, tmp_path: Path) -> None:
    uri = storage.join(root, "scenes", "s1")
    stagings = [shard_like_tree(tmp_path, f"w{i}") for i in range(4)]
    results = race(4, lambda i: _publish(stagings[i], uri, worker=i))
    assert sorted(results) == [False, False, False, True]
    winner = results.index(True)

    committed = commit.read_committed(uri)
    assert committed is not None and committed.record["worker"] == winner
    assert _committed_tree(committed, tmp_path) == storage.hash_tree(stagings[winner])
    # nothing of the losers remains: no hidden siblings locally, no other attempt on GCS
    assert storage.list_dir(storage.join(root, "scenes")) == ["s1"]
    if storage.is_remote(uri):
        assert storage.list_dir(storage.join(uri, "attempts")) == [committed.data_uri.rsplit("/", 1)[-1]]
    assert commit.clean_uncommitted(uri) == []


def test_reader_never_sees_a_partial_directory(root: str, tmp_path: Path) -> None:
    uri = storage.join(root, "scenes", "s1")
    staging = shard_like_tree(tmp_path, "r")
    expected = storage.hash_tree(staging)
    seen: list[dict] = []
    done = threading.Event()

    def read_until_done() -> None:
        while not done.is_set():
            committed = commit.read_committed(uri)
            if committed is not None:
                seen.append(_committed_tree(committed, tmp_path))

    reader = threading.Thread(target=read_until_done)
    reader.start()
    try:
        assert _publish(staging, uri)
    finally:
        done.set()
        reader.join(timeout=30)
    seen.append(_committed_tree(commit.read_committed(uri), tmp_path))
    assert all(tree == expected for tree in seen)


def test_crashed_gcs_attempt_is_invisible_and_cleaned(gcs_emulator, tmp_path: Path) -> None:
    uri = gcs_emulator.make_bucket() + "/run/scenes/s1"
    crashed = storage.join(uri, "attempts", "crashed")
    # what a pod killed between upload and commit leaves behind
    storage.put_dir(shard_like_tree(tmp_path, "old"), crashed)
    assert commit.read_committed(uri) is None
    assert commit.clean_uncommitted(uri) == [crashed]
    assert storage.list_dir(storage.join(uri, "attempts")) == []

    storage.put_dir(shard_like_tree(tmp_path, "old2"), crashed)
    staging = shard_like_tree(tmp_path, "new")
    assert _publish(staging, uri)
    committed = commit.read_committed(uri)
    assert commit.clean_uncommitted(uri) == [crashed]
    assert storage.list_dir(storage.join(uri, "attempts")) == [committed.data_uri.rsplit("/", 1)[-1]]
    assert _committed_tree(committed, tmp_path) == storage.hash_tree(staging)


def test_crashed_local_attempt_is_invisible_and_cleaned(tmp_path: Path) -> None:
    scenes = tmp_path / "run" / "scenes"
    uri = str(scenes / "s1")
    (scenes / ".s1.attempt-dead").mkdir(parents=True)  # a worker killed before its rename
    assert commit.read_committed(uri) is None
    assert commit.clean_uncommitted(uri) == [str(scenes / ".s1.attempt-dead")]
    assert storage.list_dir(scenes) == []
    staging = shard_like_tree(tmp_path, "new")
    assert _publish(staging, uri)
    assert commit.read_committed(uri).data_uri == uri
    assert storage.list_dir(scenes) == ["s1"]


def test_a_directory_minescan_did_not_commit_is_never_touched(tmp_path: Path) -> None:
    """A non-empty directory without a marker at the target is somebody else's: the publish
    refuses it and clean-up leaves it alone (issue 8: `scan --out` emptied a user's folder)."""
    target = tmp_path / "notes"
    target.mkdir()
    (target / "README.txt").write_text("my notes")
    (target / "old-shard").mkdir()
    with pytest.raises(ConflictError, match="did not commit"):
        _publish(shard_like_tree(tmp_path, "x"), str(target))
    assert commit.clean_uncommitted(str(target)) == []
    assert (target / "README.txt").read_text() == "my notes" and (target / "old-shard").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "staging-x"]


def test_an_empty_directory_at_the_target_is_used(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    assert _publish(shard_like_tree(tmp_path, "x"), str(target))
    assert commit.read_committed(str(target)) is not None


def test_gcs_prefix_with_foreign_objects_is_refused(gcs_emulator, tmp_path: Path) -> None:
    uri = gcs_emulator.make_bucket() + "/mine"
    storage.write_text(storage.join(uri, "notes.txt"), "mine")
    with pytest.raises(ConflictError, match="did not commit"):
        _publish(shard_like_tree(tmp_path, "x"), uri)
    assert storage.read_text(storage.join(uri, "notes.txt")) == "mine"


# ---------------------------------------------------------------- replace


def test_replace_swaps_in_the_new_set_and_removes_the_old(root: str, tmp_path: Path) -> None:
    uri = storage.join(root, "national")
    old, new = shard_like_tree(tmp_path, "old"), shard_like_tree(tmp_path, "new")
    assert _publish(old, uri, replace=True, gen=1)
    assert _publish(new, uri, replace=True, gen=2)
    committed = commit.read_committed(uri)
    assert committed.record["gen"] == 2
    assert _committed_tree(committed, tmp_path) == storage.hash_tree(new)
    if storage.is_remote(uri):  # the old attempt is gone, only the named one stays
        assert storage.list_dir(storage.join(uri, "attempts")) == [committed.data_uri.rsplit("/", 1)[-1]]
    else:
        assert storage.list_dir(root) == ["national"]


def test_a_failing_replace_keeps_the_previous_set(root: str, tmp_path: Path) -> None:
    uri = storage.join(root, "national")
    old = shard_like_tree(tmp_path, "old")
    assert _publish(old, uri, replace=True, gen=1)

    def half_then_fail(staging: Path):
        (staging / "sites.kml").write_text("<kml><Document>")  # truncated, never published
        raise OSError(28, "No space left on device", str(staging / "sites.kml"))

    with pytest.raises(OSError):
        commit.publish(uri, half_then_fail, replace=True)
    committed = commit.read_committed(uri)
    assert committed.record["gen"] == 1
    assert _committed_tree(committed, tmp_path) == storage.hash_tree(old)
    assert commit.clean_uncommitted(uri) == []


def test_replace_without_an_exchanging_file_system_reads_the_previous_set_midway(
    tmp_path: Path, monkeypatch
) -> None:
    """Where the file system cannot exchange two directories, the old set is renamed aside
    first; a crash between the two renames leaves it readable, and the next publish wins."""
    uri = str(tmp_path / "run" / "national")
    assert _publish(shard_like_tree(tmp_path, "old"), uri, replace=True, gen=1)
    monkeypatch.setattr(storage, "_exchange", lambda a, b: False)
    real_rename = storage.os.rename
    calls = []

    def crash_on_second_rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed between the renames")
        return real_rename(src, dst)

    monkeypatch.setattr(storage.os, "rename", crash_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        _publish(shard_like_tree(tmp_path, "new"), uri, replace=True, gen=2)
    monkeypatch.setattr(storage.os, "rename", real_rename)
    assert not Path(uri).exists()
    assert commit.read_committed(uri).record["gen"] == 1  # from the hidden previous set

    assert _publish(shard_like_tree(tmp_path, "new2"), uri, replace=True, gen=3)
    assert commit.read_committed(uri).record["gen"] == 3
    commit.clean_uncommitted(uri)
    assert sorted(p.name for p in Path(uri).parent.iterdir()) == ["national"]


# ---------------------------------------------------------------- markers and verified reads


def test_record_may_not_name_its_data_or_files(tmp_path: Path) -> None:
    for key in ("data", "files"):
        with pytest.raises(InputError, match="'data' or 'files'"):
            commit.publish_dir(shard_like_tree(tmp_path, key), str(tmp_path / "s"), {key: "x"})
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("marker, message", [
    ({"data": "../other", "files": {}}, "outside its directory"),
    ({"data": "."}, "no valid 'files'"),
    ({"data": ".", "files": {"x": "not-a-hash"}}, "no valid 'files'"),
    ({"data": ".", "files": {"../../etc/passwd": "0" * 64}}, "climbs out"),
    ([1, 2], "not a commit marker"),
])
def test_a_marker_minescan_did_not_write_is_bad_input(tmp_path: Path, marker, message) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / commit.MARKER).write_text(json.dumps(marker))
    with pytest.raises(InputError, match=message):
        commit.read_committed(str(tmp_path / "s"))


def test_a_file_changed_after_its_commit_fails_verification(root: str, tmp_path: Path) -> None:
    uri = storage.join(root, "s1")
    assert _publish(shard_like_tree(tmp_path, "a"), uri)
    committed = commit.read_committed(uri)
    assert commit.read_verified(committed, "detections.parquet").startswith(b"PAR1")
    storage.write_bytes(committed.file_uri("detections.parquet"), b"PAR1 tampered")
    with pytest.raises(commit.CorruptError, match="changed after it was committed"):
        commit.read_verified(committed, "detections.parquet")
    with pytest.raises(commit.CorruptError, match="no committed file"):
        commit.read_verified(committed, "missing.csv")


def test_committed_files_have_ordinary_modes(tmp_path: Path) -> None:
    """The marker used to be created 0600 while the data was 0644 (issue 8)."""
    uri = tmp_path / "s1"
    assert _publish(shard_like_tree(tmp_path, "a"), str(uri))
    modes = {(p.stat().st_mode & 0o777) for p in uri.rglob("*") if p.is_file()}
    assert modes == {storage.file_mode()}
