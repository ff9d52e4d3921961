"""Local paths and Cloud Storage behind one small API, and the shard commit protocol.

Every function takes a URI that is either a local path or ``gs://bucket/key``. Cloud Storage
goes through gcsfs (fsspec) for reads, writes, listings and tree transfers, and through the
official ``google-cloud-storage`` client where a precondition is needed (`create_only`).

Retries. A transient fault (HTTP 408/429/5xx, connection reset or refused, timeouts) is
retried with exponential backoff and jitter, `RetryPolicy.attempts` tries in all; after the
last one a `TransientError` naming the URI is raised (exit code 75: Kubernetes retries the
pod). Permanent faults fail at once: a missing object raises `NotFoundError`, a 400/401/403
raises `InputError`. gcsfs also retries 5xx/429 inside each call, so one of our attempts may
already be several HTTP requests.

Credentials and settings come from the environment only, read in one place: `storage_env()`.
In a pod that is Workload Identity through Application Default Credentials; on a laptop
``gcloud auth application-default login``. Under ``STORAGE_EMULATOR_HOST`` both clients use
anonymous credentials against the emulator. Nothing here logs or stores a credential.

Shard commit protocol (DESIGN §7: a shard without ``_SUCCESS.json`` does not exist)
----------------------------------------------------------------------------------
`publish_shard(staging_dir, shard_uri, success)` makes a shard visible whole or not at all,
and of several workers racing on one shard exactly one commits:

* Local ``shard_uri``: the staging tree is copied into a hidden sibling
  ``.<name>.attempt-<uuid>``, ``_SUCCESS.json`` (``success`` plus ``"data": "."``) is written
  into it last, and the sibling is renamed onto ``shard_uri``. ``rename`` refuses to replace a
  non-empty directory, so a worker that finds the shard already there lost: it deletes its
  sibling and returns False. A ``shard_uri`` without ``_SUCCESS.json`` (left by a writer that
  did not follow this protocol) is moved aside and removed first.
* ``gs://`` ``shard_uri``: the staging tree is uploaded to ``<shard>/attempts/<uuid>/``, then
  ``<shard>/_SUCCESS.json`` (``success`` plus ``"data": "attempts/<uuid>"``) is created with
  ``if_generation_match=0``. Cloud Storage lets exactly one such create succeed; a worker whose
  create fails lost: it deletes its attempt prefix and returns False. Objects under
  ``attempts/`` that ``_SUCCESS.json`` does not name are garbage from crashed workers.

`read_shard` returns the committed marker and the URI of the shard's data (``data`` resolved
against the shard), or None when there is no marker. `clean_uncommitted` removes a shard's
garbage; call it only when no worker is publishing that shard (the index's own pod before it
starts work: with ``podReplacementPolicy: Failed`` Kubernetes never runs two pods of one
index at once; or the reduce, after the map), since it cannot tell a crashed attempt from one
still uploading.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from .errors import InputError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")
Uri = str | os.PathLike[str]

GS = "gs://"
SUCCESS_NAME = "_SUCCESS.json"
ATTEMPTS_DIR = "attempts"
#: project used against the emulator, which accepts any name
EMULATOR_PROJECT = "minescan-test"
#: HTTP statuses that Cloud Storage documents as worth retrying
TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})
#: HTTP statuses that no retry can fix (404 is reported as `NotFoundError`)
PERMANENT_HTTP = frozenset({400, 401, 403, 405, 409, 411, 412, 413})


class NotFoundError(InputError, FileNotFoundError):
    """A file or object that had to exist does not (an `InputError` and a FileNotFoundError)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a transient storage fault."""

    attempts: int = 5
    initial_s: float = 0.5
    max_s: float = 30.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise InputError(f"storage retry attempts must be at least 1, got {self.attempts}")

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed try number `attempt` (0-based).

        Exponential growth capped at `max_s`, with "equal jitter" (half fixed, half random)
        so that pods failing together do not retry together, yet each still backs off.
        """
        cap = min(self.max_s, self.initial_s * self.multiplier**attempt)
        return cap / 2 + rng() * cap / 2


@dataclass(frozen=True)
class StorageEnv:
    """Storage settings taken from the environment (see `storage_env`)."""

    emulator_host: str | None = None
    project: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def storage_env(environ: Mapping[str, str] | None = None) -> StorageEnv:
    """The one place that reads the environment for storage.

    ``STORAGE_EMULATOR_HOST`` (emulator URL, anonymous credentials), ``GOOGLE_CLOUD_PROJECT``
    (project for the clients; ADC supplies it in a pod) and ``MINESCAN_STORAGE_ATTEMPTS``
    (tries per storage call, default 5). Credentials themselves are left to ADC.
    """
    env = os.environ if environ is None else environ
    host = env.get("STORAGE_EMULATOR_HOST") or None
    if host and not host.startswith(("http://", "https://")):
        host = f"http://{host}"
    project = env.get("GOOGLE_CLOUD_PROJECT") or (EMULATOR_PROJECT if host else None)
    retry = RetryPolicy()
    raw_attempts = env.get("MINESCAN_STORAGE_ATTEMPTS")
    if raw_attempts:
        try:
            retry = RetryPolicy(attempts=int(raw_attempts))
        except ValueError as exc:
            raise InputError(
                f"MINESCAN_STORAGE_ATTEMPTS={raw_attempts!r} is not a positive integer: fix it"
            ) from exc
    emulator_host = host.rstrip("/") if host else None
    return StorageEnv(emulator_host=emulator_host, project=project, retry=retry)


# ---------------------------------------------------------------- URIs


def is_remote(uri: Uri) -> bool:
    """True for ``gs://`` URIs, False for local paths."""
    return os.fspath(uri).startswith(GS)


def join(base: Uri, *parts: str) -> str:
    """Join path parts onto a local path or a ``gs://`` URI (parts never reset the base)."""
    base = _check_uri(base)
    clean = [p.strip("/") for p in parts if p.strip("/") not in ("", ".")]
    if is_remote(base):
        return "/".join([base.rstrip("/"), *clean])
    return str(Path(base, *clean))


def _check_uri(uri: Uri) -> str:
    text = os.fspath(uri)
    if "://" in text and not text.startswith(GS):
        raise InputError(f"unsupported storage URI {text!r}: use a local path or gs://bucket/key")
    return text


def _bucket_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len(GS) :].partition("/")
    if not bucket:
        raise InputError(f"{uri!r} names no bucket: write gs://bucket/key")
    return bucket, key.strip("/")


# ---------------------------------------------------------------- clients


def _gcsfs(env: StorageEnv) -> Any:
    # No cache of our own: fsspec caches instances per arguments and drops them after a
    # fork, whose child could not use the parent's event loop thread.
    if env.emulator_host:
        # The core class, not gcsfs.GCSFileSystem: when GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT is
        # on at gcsfs import, that name is the HNS class, which probes each bucket's layout
        # through an API the emulator lacks and stalls 60 s per bucket.
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(
            project=env.project,
            token="anon",
            endpoint_url=env.emulator_host,
            use_listings_cache=False,
        )
    import gcsfs

    # Listings are not cached: other pods write the same prefixes while this one runs.
    # Without a project gcsfs falls back to ADC's (and warns if given None explicitly).
    project = {"project": env.project} if env.project else {}
    return gcsfs.GCSFileSystem(token="google_default", use_listings_cache=False, **project)


def _gcs_client(env: StorageEnv) -> Any:
    return _gcs_client_in_process(env, os.getpid())


@lru_cache(maxsize=4)
def _gcs_client_in_process(env: StorageEnv, pid: int) -> Any:
    """One client per settings and process: its HTTP session must not cross a fork."""
    from google.cloud import storage

    if env.emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=env.project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": env.emulator_host},
        )
    return storage.Client(project=env.project)


def filesystem(uri: Uri) -> tuple[Any, str]:
    """The fsspec filesystem and in-filesystem path for `uri`, for fsspec-aware libraries."""
    uri = _check_uri(uri)
    if not is_remote(uri):
        import fsspec

        return fsspec.filesystem("file"), os.path.abspath(uri)
    bucket, key = _bucket_key(uri)
    fs = _call(uri, "connect to", lambda: _gcsfs(storage_env()))
    return fs, f"{bucket}/{key}" if key else bucket


# ---------------------------------------------------------------- retries and errors


def retry_call(
    func: Callable[[], T],
    uri: Uri,
    action: str = "access",
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `func` until it succeeds, retrying transient faults; map failures to our errors.

    `func` must be safe to repeat (each storage call here rewrites the same bytes). Transient
    faults are tried `policy.attempts` times in all, then raise `TransientError`; permanent
    ones raise `NotFoundError`/`InputError` at once; anything else (a bug) propagates as is.
    """
    policy = policy or storage_env().retry
    uri = os.fspath(uri)
    for attempt in range(policy.attempts):
        try:
            return func()
        except Exception as exc:  # noqa: BLE001 - classified below, unknown ones re-raised
            kind = classify_error(exc)
            if kind == "not_found":
                raise NotFoundError(f"{uri} does not exist: check the path and the bucket") from exc
            if kind == "permanent":
                raise InputError(
                    f"cannot {action} {uri}: {_reason(exc)}; check the path and this "
                    "workload's storage permissions"
                ) from exc
            if kind != "transient":
                raise
            if attempt + 1 == policy.attempts:
                raise TransientError(
                    f"cannot {action} {uri} after {policy.attempts} tries, last: {_reason(exc)}; "
                    "retry later"
                ) from exc
            delay = policy.delay(attempt)
            log.warning(
                "storage fault, retrying",
                extra={"uri": uri, "action": action, "attempt": attempt + 1,
                       "delay_s": round(delay, 2), "error": _reason(exc)},
            )
            sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


def classify_error(exc: BaseException) -> str | None:
    """``"transient"``, ``"permanent"``, ``"not_found"``, or None for a non-storage error."""
    if isinstance(exc, (NotFoundError, FileNotFoundError)):
        return "not_found"
    if isinstance(exc, PermissionError):
        return "permanent"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return "transient"
    status = _http_status(exc)
    if status is not None:
        if status == 404:
            return "not_found"
        if status in TRANSIENT_HTTP:
            return "transient"
        if status in PERMANENT_HTTP:
            return "permanent"
        return None
    return _classify_library_error(exc)


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status carried by a google-api-core, gcsfs or aiohttp error, if any."""
    from google.api_core.exceptions import GoogleAPICallError

    if isinstance(exc, GoogleAPICallError):
        return exc.code
    from gcsfs.retry import HttpError

    if isinstance(exc, HttpError):
        return int(exc.code) if exc.code is not None else None
    from aiohttp import ClientResponseError

    if isinstance(exc, ClientResponseError):
        return exc.status
    return None


def _classify_library_error(exc: BaseException) -> str | None:
    import aiohttp
    import google.auth.exceptions
    import requests
    from gcsfs.retry import ChecksumError

    if isinstance(exc, google.auth.exceptions.DefaultCredentialsError):
        return "permanent"
    if isinstance(
        exc,
        (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            aiohttp.ClientError,
            google.auth.exceptions.TransportError,
            google.auth.exceptions.RefreshError,  # metadata server hiccup under Workload Identity
            ChecksumError,
        ),
    ):
        return "transient"
    # gcsfs turns 403 into a bare OSError and 400 "invalid" into a bare ValueError
    text = str(exc)
    if isinstance(exc, OSError) and text.startswith("Forbidden"):
        return "permanent"
    if isinstance(exc, ValueError) and text.startswith("Bad Request"):
        return "permanent"
    return None


def _reason(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:300]


def _call(uri: Uri, action: str, func: Callable[[], T]) -> T:
    return retry_call(func, uri, action)


# ---------------------------------------------------------------- files and objects


def exists(uri: Uri) -> bool:
    """True if a file, directory, object or non-empty prefix exists at `uri`."""
    uri = _check_uri(uri)
    if not is_remote(uri):
        return os.path.exists(uri)
    fs, path = filesystem(uri)
    return _call(uri, "check", lambda: fs.exists(path))


def read_bytes(uri: Uri) -> bytes:
    """The whole content of a file or object (`NotFoundError` if there is none)."""
    uri = _check_uri(uri)
    if not is_remote(uri):
        return _call(uri, "read", Path(uri).read_bytes)
    fs, path = filesystem(uri)
    return _call(uri, "read", lambda: fs.cat_file(path))


def read_text(uri: Uri) -> str:
    """`read_bytes` decoded as UTF-8."""
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: Uri, data: bytes) -> None:
    """Write a whole file or object; readers see the old or the new content, never a mix."""
    uri = _check_uri(uri)
    if not is_remote(uri):
        _call(uri, "write", lambda: _atomic_write(Path(uri), data))
        return
    # a Cloud Storage object is replaced atomically by the upload itself
    fs, path = filesystem(uri)
    _call(uri, "write", lambda: fs.pipe_file(path, data))


def write_text(uri: Uri, text: str) -> None:
    """`write_bytes` of `text` encoded as UTF-8."""
    write_bytes(uri, text.encode("utf-8"))


def create_only(uri: Uri, data: bytes) -> bool:
    """Create `uri` with `data` unless it exists: True if this call created it, else False.

    The content appears whole or not at all. On Cloud Storage a retry after a lost response
    can meet the object its own first try created; it then compares contents and reports
    True if they match, so callers should make `data` unique to themselves when it matters
    who won (the shard marker carries its attempt id).
    """
    uri = _check_uri(uri)
    if is_remote(uri):
        return _create_only_gcs(uri, data)
    path = Path(uri)
    return _call(uri, "create", lambda: _create_only_local(path, data))


def _create_only_local(path: Path, data: bytes) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path.parent, path.name, data)
    try:
        # link() fails if the name exists, and publishes a fully written file in one step
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink()


def _create_only_gcs(uri: str, data: bytes) -> bool:
    from google.api_core.exceptions import PreconditionFailed

    bucket_name, key = _bucket_key(uri)
    tries = 0

    def attempt() -> bool:
        nonlocal tries
        tries += 1
        blob = _gcs_client(storage_env()).bucket(bucket_name).blob(key)
        try:
            # retry=None: retry_call owns retries, and must see every attempt to judge a 412
            blob.upload_from_string(
                data, content_type=_content_type(key), if_generation_match=0, retry=None
            )
            return True
        except PreconditionFailed:
            if tries == 1:
                return False
            return blob.download_as_bytes(retry=None) == data

    return _call(uri, "create", attempt)


def _content_type(key: str) -> str:
    return "application/json" if key.endswith(".json") else "application/octet-stream"


def _write_temp(directory: Path, name: str, data: bytes) -> Path:
    """A fully written, fsynced hidden temp file beside its final name."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path.parent, path.name, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_with_generation(uri: Uri) -> tuple[bytes | None, int]:
    """The content of a compare-and-swap object and its generation: ``(None, 0)`` if absent.

    Pass the generation to `replace_if_generation`. The content and the generation always
    belong together: a write in between makes this call read again. On Cloud Storage the
    generation is the object's; locally the object is a directory of immutable numbered
    files (``<uri>/<generation>``) and the highest one is current, so an object written
    with `replace_if_generation` is read with this function, not `read_bytes`.
    """
    uri = _check_uri(uri)
    if is_remote(uri):
        return _call(uri, "read", lambda: _read_generation_gcs(uri))
    return _call(uri, "read", lambda: _read_generation_local(Path(uri)))


def replace_if_generation(uri: Uri, data: bytes, generation: int) -> bool:
    """Write `data` to `uri` only if its generation is still `generation` (0: only if it
    does not exist): True if this call wrote it, False if another writer got there first.

    A compare-and-swap: of several writers that read the same generation exactly one
    succeeds, and readers see the old content or the new one, never a mix. As with
    `create_only`, a Cloud Storage retry after a lost response compares contents to judge
    whether its own first try landed, so make `data` unique to the writer.
    """
    uri = _check_uri(uri)
    if generation < 0:
        raise InputError(f"generation {generation} for {uri} must be 0 or more")
    if is_remote(uri):
        return _replace_if_generation_gcs(uri, data, generation)
    path = Path(uri)
    return _call(uri, "write", lambda: _create_only_local(path / _generation_name(generation + 1), data))


def _generation_name(generation: int) -> str:
    # zero-padded so that names sort as numbers do
    return f"{generation:012d}"


def _read_generation_local(path: Path) -> tuple[bytes | None, int]:
    if not path.is_dir():
        if path.exists():
            raise InputError(f"{path} is a plain file, not a compare-and-swap object: move it aside")
        return None, 0
    numbered = [int(name) for name in os.listdir(path) if name.isdigit()]
    if not numbered:
        return None, 0
    current = max(numbered)
    # generation files are immutable once linked into place, so this read cannot tear
    return (path / _generation_name(current)).read_bytes(), current


def _read_generation_gcs(uri: str) -> tuple[bytes | None, int]:
    from google.api_core.exceptions import PreconditionFailed

    bucket_name, key = _bucket_key(uri)
    bucket = _gcs_client(storage_env()).bucket(bucket_name)
    while True:
        blob = bucket.get_blob(key, retry=None)
        if blob is None:
            return None, 0
        try:
            return blob.download_as_bytes(if_generation_match=blob.generation, retry=None), blob.generation
        except PreconditionFailed:
            continue  # replaced between the two requests: read the new generation


def _replace_if_generation_gcs(uri: str, data: bytes, generation: int) -> bool:
    from google.api_core.exceptions import PreconditionFailed

    bucket_name, key = _bucket_key(uri)
    tries = 0

    def attempt() -> bool:
        nonlocal tries
        tries += 1
        blob = _gcs_client(storage_env()).bucket(bucket_name).blob(key)
        try:
            blob.upload_from_string(
                data, content_type=_content_type(key), if_generation_match=generation, retry=None
            )
        except PreconditionFailed:
            # a retry may meet the object its own lost first try wrote
            return tries > 1 and blob.download_as_bytes(retry=None) == data
        return True

    return _call(uri, "replace", attempt)


# ---------------------------------------------------------------- trees


def put_dir(local_dir: Uri, uri: Uri) -> None:
    """Copy the files under `local_dir` to under `uri` (merging with what is there)."""
    src = Path(local_dir)
    if not src.is_dir():
        raise InputError(f"{src} is not a directory: nothing to upload")
    uri = _check_uri(uri)
    if not is_remote(uri):
        _call(uri, "write", lambda: shutil.copytree(src, uri, dirs_exist_ok=True))
        return
    files = [p for p in sorted(src.rglob("*")) if p.is_file()]
    if not files:
        return
    fs, path = filesystem(uri)
    # explicit file lists: fsspec's directory-copy rules depend on what exists at the target
    lpaths = [str(p) for p in files]
    rpaths = [f"{path}/{p.relative_to(src).as_posix()}" for p in files]
    _call(uri, "upload to", lambda: fs.put(lpaths, rpaths))


def get_dir(uri: Uri, local_dir: Uri) -> None:
    """Copy the files under `uri` to under `local_dir` (`NotFoundError` if there are none)."""
    uri = _check_uri(uri)
    dst = Path(local_dir)
    if not is_remote(uri):
        if not os.path.isdir(uri):
            raise NotFoundError(f"{uri} is not a directory: check the path")
        _call(uri, "read", lambda: shutil.copytree(uri, dst, dirs_exist_ok=True))
        return
    fs, path = filesystem(uri)
    keys = _remote_files(fs, uri, path)
    if not keys:
        raise NotFoundError(f"no objects under {uri}: check the path")
    lpaths = [str(dst / key[len(path) + 1 :]) for key in keys]
    for parent in {os.path.dirname(p) for p in lpaths}:
        os.makedirs(parent, exist_ok=True)
    _call(uri, "download", lambda: fs.get(keys, lpaths))


def localize(uri: Uri, workdir: Uri) -> Path:
    """A local path holding `uri`: the path itself when local, else a download into
    `workdir` (one object, or every object under a prefix)."""
    uri = _check_uri(uri)
    if not is_remote(uri):
        return Path(uri)
    target = Path(workdir) / uri.rstrip("/").rsplit("/", 1)[-1]
    fs, path = filesystem(uri)
    if _call(uri, "inspect", lambda: fs.isfile(path)):
        target.parent.mkdir(parents=True, exist_ok=True)
        # streamed to disk: a scene is gigabytes
        _call(uri, "download", lambda: fs.get(path, str(target)))
    else:
        get_dir(uri, target)
    return target


def list_dir(uri: Uri) -> list[str]:
    """Sorted names of the immediate children of `uri`; [] when it does not exist."""
    uri = _check_uri(uri)
    if not is_remote(uri):
        return sorted(os.listdir(uri)) if os.path.isdir(uri) else []
    fs, path = filesystem(uri)

    def ls() -> list[str]:
        try:
            entries = fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        names = {e.rstrip("/").rsplit("/", 1)[-1] for e in entries if e.rstrip("/") != path}
        return sorted(names)

    return _call(uri, "list", ls)


def rm_tree(uri: Uri) -> None:
    """Delete `uri` and everything under it; a missing one is fine."""
    uri = _check_uri(uri)
    if not is_remote(uri):
        _call(uri, "delete", lambda: _remove_local(Path(uri)))
        return
    if not _bucket_key(uri)[1]:
        raise InputError(f"refusing to delete the whole bucket {uri}: name a prefix under it")
    fs, path = filesystem(uri)
    keys = _remote_files(fs, uri, path, include_self=True)

    def remove() -> None:
        try:
            fs.rm(keys)
        except FileNotFoundError:
            pass  # a previous try deleted some before failing

    if keys:
        _call(uri, "delete", remove)


def _remote_files(fs: Any, uri: str, path: str, include_self: bool = False) -> list[str]:
    """Object keys under `path/` (not merely sharing its prefix), without folder placeholders."""

    def find() -> list[str]:
        try:
            found = fs.find(path)
        except FileNotFoundError:
            return []
        return [
            k for k in found
            if not k.endswith("/") and (k.startswith(path + "/") or (include_self and k == path))
        ]

    return _call(uri, "list", find)


def _remove_local(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def hash_tree(local_dir: Uri) -> dict[str, str]:
    """SHA-256 of every file under `local_dir`, keyed by POSIX relative path, sorted."""
    root = Path(local_dir)
    if not root.is_dir():
        raise InputError(f"{root} is not a directory: nothing to hash")
    return {
        path.relative_to(root).as_posix(): sha256_file(path)
        for path in sorted(p for p in root.rglob("*") if p.is_file())
    }


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a local file, hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- shards


class Shard(NamedTuple):
    """A committed shard: its ``_SUCCESS.json`` content and where its data lives."""

    success: dict[str, Any]
    data_uri: str


def publish_shard(staging_dir: Uri, shard_uri: Uri, success: Mapping[str, Any]) -> bool:
    """Commit `staging_dir` as the shard at `shard_uri`; True if this call committed it.

    False means the shard was already committed (by this run earlier or a racing worker);
    nothing of this call's data is left behind then. See the module docstring.
    """
    staging = Path(staging_dir)
    if not staging.is_dir():
        raise InputError(f"shard staging {staging} is not a directory")
    if (staging / SUCCESS_NAME).exists():
        raise InputError(f"{staging / SUCCESS_NAME} exists: publish_shard writes the marker itself")
    if "data" in success:
        raise InputError("the success record must not have a 'data' key: publish_shard sets it")
    shard_uri = _check_uri(shard_uri)
    if is_remote(shard_uri):
        return _publish_gcs(staging, shard_uri, success)
    return _publish_local(staging, Path(shard_uri), success)


def _marker(success: Mapping[str, Any], data: str) -> bytes:
    return json.dumps({**success, "data": data}, indent=2, sort_keys=True).encode("utf-8")


def _publish_local(staging: Path, shard: Path, success: Mapping[str, Any]) -> bool:
    if (shard / SUCCESS_NAME).is_file():
        return False
    payload = _marker(success, ".")
    shard.parent.mkdir(parents=True, exist_ok=True)
    if shard.exists():
        _discard_uncommitted_local(shard)
    tmp = shard.parent / f".{shard.name}.attempt-{uuid.uuid4().hex}"
    try:
        shutil.copytree(staging, tmp)
        _atomic_write(tmp / SUCCESS_NAME, payload)
        try:
            os.rename(tmp, shard)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False
            raise
        return True
    finally:
        # after a successful rename there is nothing left here; otherwise it is our copy
        shutil.rmtree(tmp, ignore_errors=True)


def _discard_uncommitted_local(shard: Path) -> None:
    """Remove a shard directory without a marker, without ever removing a committed one."""
    aside = shard.parent / f".{shard.name}.discard-{uuid.uuid4().hex}"
    try:
        os.rename(shard, aside)
    except FileNotFoundError:
        return
    if (aside / SUCCESS_NAME).is_file():
        # a racing worker committed between our check and the rename: put its shard back
        try:
            os.rename(aside, shard)
            return
        except OSError:
            pass  # yet another worker committed meanwhile; that shard stands
    _remove_local(aside)


def _publish_gcs(staging: Path, shard_uri: str, success: Mapping[str, Any]) -> bool:
    marker_uri = join(shard_uri, SUCCESS_NAME)
    if exists(marker_uri):
        return False
    data = f"{ATTEMPTS_DIR}/{uuid.uuid4().hex}"
    payload = _marker(success, data)
    attempt_uri = join(shard_uri, data)
    put_dir(staging, attempt_uri)
    # If create_only raises, the marker may exist (its response was lost): keep the attempt
    # for clean_uncommitted to judge, never delete data a marker may name.
    if create_only(marker_uri, payload):
        return True
    rm_tree(attempt_uri)
    return False


def read_shard(shard_uri: Uri) -> Shard | None:
    """The committed shard at `shard_uri`, or None if it has no ``_SUCCESS.json``."""
    shard_uri = _check_uri(shard_uri)
    marker_uri = join(shard_uri, SUCCESS_NAME)
    try:
        raw = read_bytes(marker_uri)
    except NotFoundError:
        return None
    try:
        success = json.loads(raw)
        data = success["data"]
        valid = data == "." or (
            isinstance(data, str)
            and data.startswith(f"{ATTEMPTS_DIR}/")
            and ".." not in data.split("/")
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{marker_uri} is not a shard marker: delete the shard and re-run it"
        ) from exc
    if not valid:
        raise InputError(
            f"{marker_uri} names data {data!r} outside the shard: delete it and re-run"
        )
    return Shard(success=success, data_uri=shard_uri if data == "." else join(shard_uri, data))


def clean_uncommitted(shard_uri: Uri) -> list[str]:
    """Delete what crashed attempts left of a shard; returns the URIs removed.

    Keeps a committed shard's data. Only call it while no worker is publishing this shard.
    """
    shard_uri = _check_uri(shard_uri)
    if not is_remote(shard_uri):
        return _clean_local(Path(shard_uri))
    shard = read_shard(shard_uri)
    keep = shard.data_uri if shard else None
    removed = []
    attempts_uri = join(shard_uri, ATTEMPTS_DIR)
    for name in list_dir(attempts_uri):
        attempt_uri = join(attempts_uri, name)
        if attempt_uri != keep:
            rm_tree(attempt_uri)
            removed.append(attempt_uri)
    return removed


def _clean_local(shard: Path) -> list[str]:
    removed = []
    if shard.parent.is_dir():
        for prefix in (f".{shard.name}.attempt-", f".{shard.name}.discard-"):
            for leftover in sorted(shard.parent.glob(f"{prefix}*")):
                _remove_local(leftover)
                removed.append(str(leftover))
    if shard.exists() and not (shard / SUCCESS_NAME).is_file():
        _discard_uncommitted_local(shard)
        removed.append(str(shard))
    return removed
