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

The commit protocol built on these calls (create-only markers, attempts, verified reads)
lives with the shard in `minescan.batch.commit`; this module knows nothing of runs or shards.

Paths. `join` never lets a part climb out of its base (`..`, NUL, or a scheme), so every path
the package derives stays inside the root it was derived from.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from .errors import InputError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")
Uri = str | os.PathLike[str]

GS = "gs://"
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
    """Join path parts onto a local path or a ``gs://`` URI, staying inside `base`.

    Parts never reset the base (a leading ``/`` is dropped) and may not climb out of it: a
    ``..`` segment, a NUL byte or a URI scheme in a part is an `InputError`. Every path the
    package derives from a user's root goes through here, so none can escape that root.
    """
    base = _check_uri(base)
    clean = []
    for part in parts:
        text = os.fspath(part)
        if "\x00" in text or "://" in text:
            raise InputError(f"path part {text!r} is not a plain name: it cannot be joined onto {base}")
        segments = [s for s in text.strip("/").split("/") if s not in ("", ".")]
        if ".." in segments:
            raise InputError(f"path part {text!r} climbs out of {base} ('..'): refusing it")
        clean.extend(segments)
    if is_remote(base):
        return "/".join([base.rstrip("/"), *clean])
    return str(Path(base, *clean))


def _check_uri(uri: Uri) -> str:
    text = os.fspath(uri)
    if "://" in text and not text.startswith(GS):
        raise InputError(f"unsupported storage URI {redact(text)!r}: use a local path or gs://bucket/key")
    return text


def redact(uri: Uri) -> str:
    """`uri` safe to log and to store: no query string or fragment (a signed URL's signature
    lives there) and no user:password@ part."""
    text = os.fspath(uri)
    text = re.sub(r"[?#].*$", "", text, flags=re.S)
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@", r"\1", text)


def _bucket_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len(GS) :].partition("/")
    if not bucket:
        raise InputError(f"{redact(uri)!r} names no bucket: write gs://bucket/key")
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
    uri = redact(uri)  # errors and logs never carry a signed URL's signature
    for attempt in range(policy.attempts):
        try:
            return func()
        except Exception as exc:  # noqa: BLE001 - classified below, unknown ones re-raised
            kind = classify_error(exc)
            if kind == "not_found":
                raise NotFoundError(f"{redact(uri)} does not exist: check the path and the bucket") from exc
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
        _call(uri, "write", lambda: write_local_atomic(Path(uri), data))
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
    return write_if_generation(uri, data, 0)


def read_generation(uri: Uri) -> tuple[bytes, int] | None:
    """A Cloud Storage object's content and generation, or None when it does not exist.

    The generation is what `write_if_generation` compares against: read, decide, then write
    only if nobody wrote in between (compare-and-swap).
    """
    uri = _require_remote(uri, "read a generation of")
    bucket_name, key = _bucket_key(uri)

    def attempt() -> tuple[bytes, int] | None:
        from google.api_core.exceptions import NotFound

        blob = _gcs_client(storage_env()).bucket(bucket_name).blob(key)
        try:
            data = blob.download_as_bytes(retry=None)
        except NotFound:
            return None
        return data, int(blob.generation)

    return _call(uri, "read", attempt)


def write_if_generation(uri: Uri, data: bytes, generation: int) -> bool:
    """Write a Cloud Storage object only if its generation is still `generation` (0: only if
    it does not exist). True if this call wrote it; False if another writer got there first.

    A retry after a lost response can meet the object its own first try wrote; it then
    compares contents and reports True if they match, so callers make `data` unique to
    themselves when it matters who won (markers carry their attempt id).
    """
    from google.api_core.exceptions import PreconditionFailed

    uri = _require_remote(uri, "write conditionally to")
    bucket_name, key = _bucket_key(uri)
    tries = 0

    def attempt() -> bool:
        nonlocal tries
        tries += 1
        blob = _gcs_client(storage_env()).bucket(bucket_name).blob(key)
        try:
            # retry=None: retry_call owns retries, and must see every attempt to judge a 412
            blob.upload_from_string(
                data, content_type=_content_type(key), if_generation_match=generation, retry=None
            )
            return True
        except PreconditionFailed:
            if tries == 1:
                return False
            return blob.download_as_bytes(retry=None) == data

    return _call(uri, "write", attempt)


def _require_remote(uri: Uri, action: str) -> str:
    uri = _check_uri(uri)
    if not is_remote(uri):
        raise InputError(f"cannot {action} {redact(uri)}: object generations exist on gs:// only")
    return uri


def _content_type(key: str) -> str:
    return "application/json" if key.endswith(".json") else "application/octet-stream"


def _write_temp(directory: Path, name: str, data: bytes) -> Path:
    """A fully written, fsynced hidden temp file beside its final name, with the mode an
    ordinary file gets here (mkstemp's 0600 would hide markers from other users)."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def write_local_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a local file whole or not at all: fsynced temp sibling, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path.parent, path.name, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@lru_cache(maxsize=1)
def file_mode() -> int:
    """0666 minus this process's umask: the mode `open()` would give a new file."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    return 0o644


def replace_dir(new: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Put the local directory `new` where `target` is, keeping `target` until `new` is there.

    One atomic exchange where the OS and file system can (``renameat2(RENAME_EXCHANGE)`` on
    Linux, ``renamex_np(RENAME_SWAP)`` on macOS), else `target` is first renamed to a hidden
    ``.<name>.previous-<uuid>`` sibling; the old directory is removed only after `new` stands
    under the target's name.
    """
    new, target = Path(new), Path(target)
    if not target.exists():
        os.rename(new, target)
        fsync_dir(target.parent)
        return
    if _exchange(new, target):
        fsync_dir(target.parent)
        shutil.rmtree(new, ignore_errors=True)  # now the previous directory
        return
    previous = target.parent / f".{target.name}.previous-{uuid.uuid4().hex}"
    os.rename(target, previous)
    os.rename(new, target)
    fsync_dir(target.parent)
    shutil.rmtree(previous, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically where the OS and file system can; False where they cannot."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        at_fdcwd, rename_exchange = -100, 2
        result = libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        result = libc.renamex_np(os.fsencode(a), os.fsencode(b), 2)  # RENAME_SWAP
    else:
        return False
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # this file system cannot exchange: fall back to two renames
    raise OSError(err, os.strerror(err), str(b))


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_with_generation(uri: Uri) -> tuple[bytes | None, int]:
    """A compare-and-swap object's content and generation, on gs:// or local disk:
    ``(None, 0)`` when it does not exist. Pass the generation to `replace_if_generation`.

    On Cloud Storage this is `read_generation`. Locally the object is a directory of
    immutable numbered files (``<uri>/<generation>``), the highest one current, so an object
    written with `replace_if_generation` is read with this function, not `read_bytes`.
    """
    uri = _check_uri(uri)
    if is_remote(uri):
        return read_generation(uri) or (None, 0)
    return _call(uri, "read", lambda: _read_generation_local(Path(uri)))


def replace_if_generation(uri: Uri, data: bytes, generation: int) -> bool:
    """`write_if_generation` on gs:// or local disk: write `data` only if the object is still
    at `generation` (0: only if it does not exist); True if this call wrote it.

    Of several writers that read the same generation exactly one succeeds, and readers see
    the old content or the new one, never a mix. Locally the new generation's file is
    published with `link()`, which refuses an existing name: the same race, the same winner.
    """
    uri = _check_uri(uri)
    if generation < 0:
        raise InputError(f"generation {generation} for {uri} must be 0 or more")
    if is_remote(uri):
        return write_if_generation(uri, data, generation)
    path = Path(uri) / _generation_name(generation + 1)
    return _call(uri, "write", lambda: _create_only_local(path, data))


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
            raise NotFoundError(f"{redact(uri)} is not a directory: check the path")
        _call(uri, "read", lambda: shutil.copytree(uri, dst, dirs_exist_ok=True))
        return
    fs, path = filesystem(uri)
    keys = _remote_files(fs, uri, path)
    if not keys:
        raise NotFoundError(f"no objects under {redact(uri)}: check the path")
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


def find(uri: Uri) -> list[str]:
    """Sorted URIs (or local paths) of every file or object under `uri`; [] when none."""
    uri = _check_uri(uri)
    if not is_remote(uri):
        root = Path(uri)
        return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    fs, path = filesystem(uri)
    return sorted(f"{GS}{key}" for key in _remote_files(fs, uri, path))


def rm_tree(uri: Uri) -> None:
    """Delete `uri` and everything under it; a missing one is fine."""
    uri = _check_uri(uri)
    if not is_remote(uri):
        _call(uri, "delete", lambda: _remove_local(Path(uri)))
        return
    if not _bucket_key(uri)[1]:
        raise InputError(f"refusing to delete the whole bucket {redact(uri)}: name a prefix under it")
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
