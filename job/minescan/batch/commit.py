"""Committing a directory of results whole or not at all, and reading back only what was committed.

A committed directory (a scene shard, a run's national outputs) is one whose ``_SUCCESS.json``
marker exists. The marker is written last and records, besides what the writer says about the
result, the SHA-256 of every data file (``files``) and where the data lives (``data``). A
directory without a marker does not exist for any reader. docs/ARCHITECTURE.md, "Commits".

Two ways to publish, on local disk and on Cloud Storage alike:

* **create-once** (`replace=False`, a map pod's shard): of several writers racing on one
  directory exactly one commits; the others learn they lost and leave nothing behind.
* **replace** (`replace=True`, the national outputs, ``scan --overwrite``): the new set
  replaces a committed one only once it is complete; a failure at any point leaves the
  previous committed set readable.

Local disk. The writer fills a hidden sibling ``.<name>.attempt-<uuid>`` (same file system,
so publishing is a rename, never a copy) and writes the marker into it last. Create-once
renames it onto ``<name>``: ``rename`` refuses a non-empty target, so a writer that finds a
committed directory lost. Replace exchanges the two directories in one atomic
``renameat2(RENAME_EXCHANGE)`` (``renamex_np`` on macOS), then removes the old one; where the
file system cannot exchange, the old directory is first renamed to ``.<name>.previous-<uuid>``
and a reader that finds no ``<name>`` reads that one (`read_committed`).

Cloud Storage. The writer uploads to ``<name>/attempts/<uuid>/``, then writes the marker
``<name>/_SUCCESS.json`` (``data: attempts/<uuid>``) with a generation precondition: 0
(create-once: only if absent) or the generation of the marker it replaces. Exactly one
conditional write succeeds; the loser deletes its attempt.

Nothing here ever deletes what it did not create: a non-empty directory without a marker at
the target is somebody else's (`ConflictError`, exit 5), and clean-up only touches the
hidden attempt/previous siblings and ``attempts/`` prefixes this protocol names.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import storage
from ..errors import ConflictError, InputError
from .layout import ATTEMPTS, MARKER

log = logging.getLogger(__name__)

_HEX64 = re.compile(r"[0-9a-f]{64}")


class CorruptError(InputError):
    """A committed file does not match the hash its marker recorded."""


@dataclass(frozen=True)
class Committed:
    """A committed directory: its marker's record and where its data lives."""

    uri: str
    record: dict[str, Any]
    data_uri: str
    generation: int | None = None  # the marker's generation on Cloud Storage

    @property
    def files(self) -> dict[str, str]:
        return self.record["files"]

    def file_uri(self, name: str) -> str:
        return storage.join(self.data_uri, name)


# ---------------------------------------------------------------- reading


def read_committed(uri: str) -> Committed | None:
    """The committed directory at `uri`, or None when it has no marker.

    A marker that cannot be what this protocol wrote (not JSON, no file hashes, data outside
    the directory) is an `InputError` naming it (exit 3), never a crash further on.
    """
    uri = os.fspath(uri)
    found = _read_marker(uri)
    if found is None and not storage.is_remote(uri):
        previous = _previous_siblings(Path(uri))
        if previous:  # a local replace that stopped between its two renames
            found = _read_marker(str(previous[-1]))
            uri = str(previous[-1]) if found else uri
    if found is None:
        return None
    raw, generation, marker_uri = found
    record = parse_marker(raw, marker_uri)
    data = record["data"]
    data_uri = uri if data == "." else storage.join(uri, data)
    return Committed(uri=uri, record=record, data_uri=data_uri, generation=generation)


def _read_marker(uri: str) -> tuple[bytes, int | None, str] | None:
    marker_uri = storage.join(uri, MARKER)
    if storage.is_remote(uri):
        found = storage.read_generation(marker_uri)
        return None if found is None else (found[0], found[1], marker_uri)
    try:
        return storage.read_bytes(marker_uri), None, marker_uri
    except storage.NotFoundError:
        return None


def parse_marker(raw: bytes, marker_uri: str) -> dict[str, Any]:
    """A marker's record, checked for what every reader relies on."""
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise InputError(f"{marker_uri} is not a commit marker (not a JSON object): remove its "
                         "directory and re-run the step that wrote it")
    data, files = record.get("data"), record.get("files")
    valid_data = data == "." or (
        isinstance(data, str) and re.fullmatch(rf"{ATTEMPTS}/[0-9a-f]{{32}}", data) is not None
    )
    if not valid_data:
        raise InputError(f"{marker_uri} names data {data!r} outside its directory: remove the "
                         "directory and re-run the step that wrote it")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and _HEX64.fullmatch(v) for k, v in files.items()
    ):
        raise InputError(f"{marker_uri} has no valid 'files' hashes: it was not written by "
                         "minescan; remove the directory and re-run the step that wrote it")
    for name in files:
        storage.join(".", name)  # refuses names that climb out of the directory
    return record


def read_verified(committed: Committed, name: str) -> bytes:
    """The bytes of one committed file, checked against the hash its marker recorded."""
    expected = committed.files.get(name)
    if expected is None:
        raise CorruptError(f"{committed.uri} has no committed file {name!r}: the directory is "
                           "incomplete; re-run the step that wrote it")
    data = storage.read_bytes(committed.file_uri(name))
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise CorruptError(
            f"{committed.file_uri(name)} has SHA-256 {actual[:16]}… but its marker recorded "
            f"{expected[:16]}…: the file changed after it was committed; re-run the step that wrote it"
        )
    return data


def _tree_diff(expected: dict[str, str], actual: dict[str, str]) -> tuple[list[str], list[str]]:
    """(changed or missing, extra) file names of `actual` hashes against `expected` ones."""
    changed = sorted(n for n in expected if actual.get(n) != expected[n])
    return changed, sorted(set(actual) - set(expected))


def verify_local_tree(committed: Committed, local_dir: str | os.PathLike[str]) -> None:
    """Check a local copy of a committed directory file by file against its marker."""
    actual = storage.hash_tree(local_dir)
    actual.pop(MARKER, None)
    changed, extra = _tree_diff(committed.files, actual)
    if changed or extra:
        raise CorruptError(
            f"{committed.uri} does not match its marker ({len(changed)} changed or missing files, "
            f"e.g. {(changed or extra)[0]!r}): re-run the step that wrote it"
        )


def verify_local_subtree(committed: Committed, name: str, local_dir: str | os.PathLike[str]) -> None:
    """Check a local copy of the committed sub-directory `name` (a zarr store) file by file
    against the hashes its marker recorded."""
    prefix = name.rstrip("/") + "/"
    expected = {n[len(prefix):]: h for n, h in committed.files.items() if n.startswith(prefix)}
    changed, extra = _tree_diff(expected, storage.hash_tree(local_dir))
    if not expected or changed or extra:
        first = prefix + (changed or extra or [""])[0]
        raise CorruptError(
            f"{committed.file_uri(name)} does not match its marker ({len(changed)} changed or missing "
            f"files, {len(extra)} extra, e.g. {first!r}): the shard changed after it was committed; "
            "re-run its map index"
        )


# ---------------------------------------------------------------- publishing


def publish(
    uri: str,
    fill: Callable[[Path], Mapping[str, Any]],
    *,
    replace: bool = False,
) -> bool:
    """Write a directory with `fill(staging)` and commit it at `uri`; True if this call did.

    `fill` writes the data files into the (empty, local) staging directory and returns the
    record to put in the marker; `files` (every file's SHA-256) and `data` are added here.
    False means another writer committed first (create-once only); nothing of this call
    is left behind then.
    """
    uri = os.fspath(uri)
    if storage.is_remote(uri):
        with tempfile.TemporaryDirectory(prefix="minescan-commit-") as tmp:
            staging = Path(tmp) / "data"
            staging.mkdir()
            record = _record(fill(staging), staging)
            return _publish_gcs(staging, uri, record, replace)
    target = Path(uri)
    _refuse_foreign(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    attempt = target.parent / f".{target.name}.attempt-{uuid.uuid4().hex}"
    attempt.mkdir(mode=0o777)
    try:
        record = _record(fill(attempt), attempt)
        storage.write_local_atomic(attempt / MARKER, _marker_bytes(record, "."))
        return _publish_local(attempt, target, replace)
    finally:
        shutil.rmtree(attempt, ignore_errors=True)


def publish_dir(staging: str | os.PathLike[str], uri: str, record: Mapping[str, Any],
                *, replace: bool = False) -> bool:
    """`publish` of an already written local directory (copied, never moved or changed)."""
    src = Path(staging)
    if not src.is_dir():
        raise InputError(f"{src} is not a directory: nothing to publish")
    if (src / MARKER).exists():
        raise InputError(f"{src / MARKER} exists: the marker is written by the commit itself")
    return publish(uri, lambda dst: (shutil.copytree(src, dst, dirs_exist_ok=True), record)[1],
                   replace=replace)


def _record(record: Mapping[str, Any], staging: Path) -> dict[str, Any]:
    if "data" in record or "files" in record:
        raise InputError("a commit record must not hold 'data' or 'files': the commit writes them")
    return {**record, "files": storage.hash_tree(staging)}


def _marker_bytes(record: Mapping[str, Any], data: str) -> bytes:
    return json.dumps({**record, "data": data}, indent=2, sort_keys=True).encode("utf-8")


def _refuse_foreign(target: Path) -> None:
    """A non-empty directory (or a file) at `target` without a marker is not ours to touch."""
    if target.is_symlink() or target.is_file():
        raise ConflictError(f"{target} exists and is not a directory minescan committed: "
                            "choose another output location")
    if target.is_dir() and not (target / MARKER).is_file() and any(target.iterdir()):
        raise ConflictError(
            f"{target} already holds files that minescan did not commit (no {MARKER}); it never "
            "deletes them: choose a new or empty output directory"
        )


def _publish_local(attempt: Path, target: Path, replace: bool) -> bool:
    committed = (target / MARKER).is_file()
    if committed and not replace:
        return False
    if not committed:
        try:
            os.rename(attempt, target)  # onto nothing or an empty directory
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                if replace and (target / MARKER).is_file():
                    return _publish_local(attempt, target, replace)
                return False  # another writer committed between our check and the rename
            raise
        storage.fsync_dir(target.parent)
        return True
    storage.replace_dir(attempt, target)
    return True


def _publish_gcs(staging: Path, uri: str, record: dict[str, Any], replace: bool) -> bool:
    marker_uri = storage.join(uri, MARKER)
    current = storage.read_generation(marker_uri)
    if current is not None and not replace:
        return False
    if current is None and storage.list_dir(uri) and not storage.list_dir(storage.join(uri, ATTEMPTS)):
        raise ConflictError(
            f"{uri} already holds objects that minescan did not commit (no {MARKER}); it never "
            "deletes them: choose a new or empty output prefix"
        )
    data = f"{ATTEMPTS}/{uuid.uuid4().hex}"
    attempt_uri = storage.join(uri, data)
    storage.put_dir(staging, attempt_uri)
    generation = 0 if current is None else current[1]
    # If the write raises, the marker may exist (its response was lost): keep the attempt for
    # clean_uncommitted to judge, never delete data a marker may name.
    if storage.write_if_generation(marker_uri, _marker_bytes(record, data), generation):
        if current is not None:
            old = parse_marker(current[0], marker_uri)["data"]
            if old != ".":
                storage.rm_tree(storage.join(uri, old))
        return True
    storage.rm_tree(attempt_uri)
    if replace:
        raise ConflictError(f"{uri} was replaced by another writer while this one wrote: "
                            "its result stands; re-run to replace it again")
    return False


def _previous_siblings(target: Path) -> list[Path]:
    if target.exists() or not target.parent.is_dir():
        return []
    found = [p for p in target.parent.glob(f".{target.name}.previous-*") if (p / MARKER).is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime)


# ---------------------------------------------------------------- clean-up


def clean_uncommitted(uri: str) -> list[str]:
    """Delete what crashed writers left of the directory at `uri`; return what was removed.

    Only this protocol's own leftovers are touched: hidden ``.<name>.attempt-*`` and
    ``.<name>.previous-*`` siblings locally (a previous set only once a committed one stands),
    and ``attempts/*`` prefixes the marker does not name on Cloud Storage. Call it only while no
    writer is publishing this directory (it cannot tell a crashed attempt from a live one).
    """
    uri = os.fspath(uri)
    if storage.is_remote(uri):
        committed = read_committed(uri)
        keep = committed.data_uri if committed else None
        removed = []
        attempts_uri = storage.join(uri, ATTEMPTS)
        for name in storage.list_dir(attempts_uri):
            attempt_uri = storage.join(attempts_uri, name)
            if attempt_uri != keep:
                storage.rm_tree(attempt_uri)
                removed.append(attempt_uri)
        return removed
    target = Path(uri)
    removed = []
    if target.parent.is_dir():
        patterns = [f".{target.name}.attempt-*"]
        if (target / MARKER).is_file():
            patterns.append(f".{target.name}.previous-*")
        for pattern in patterns:
            for leftover in sorted(target.parent.glob(pattern)):
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(str(leftover))
    return removed
