"""One exception root, and the exit codes Kubernetes acts on.

Every error a user can cause derives from `MinescanError` and from the matching builtin,
so callers can catch either. Each carries an exit code: the map Job's podFailurePolicy
fails an index for good on `EXIT_BAD_INPUT`/`EXIT_BAD_MODEL`/`EXIT_CONFLICT` and retries
everything else (see README, "Exit codes").
"""

from __future__ import annotations

import errno
import os

EXIT_INTERNAL = 1  # a bug: retried, then reported
EXIT_USAGE = 2  # click's own code for a malformed command line
EXIT_BAD_INPUT = 3  # the scene, manifest or points file is wrong: retrying cannot help
EXIT_BAD_MODEL = 4  # model directory unreadable, incomplete or its hash does not match
EXIT_CONFLICT = 5  # run config/model differs from the one the run was started with
EXIT_CANT_WRITE = 73  # EX_CANTCREAT: the output is read-only or not ours to write: fix, then re-run
EXIT_NO_SPACE = 74  # EX_IOERR: disk full, quota or file-size limit: a pod on another node may fit
EXIT_TRANSIENT = 75  # EX_TEMPFAIL: storage or network hiccup, safe to retry

#: exit codes after which re-running the same pod cannot succeed
PERMANENT_EXIT_CODES = (EXIT_BAD_INPUT, EXIT_BAD_MODEL, EXIT_CONFLICT, EXIT_CANT_WRITE)


class MinescanError(Exception):
    """Root of every error minescan raises on purpose."""

    exit_code = EXIT_INTERNAL


class InputError(MinescanError, ValueError):
    """The input data is wrong: say what and what to do."""

    exit_code = EXIT_BAD_INPUT


class ModelError(MinescanError, ValueError):
    """A model directory is unreadable, incomplete or altered."""

    exit_code = EXIT_BAD_MODEL


class ConflictError(MinescanError, RuntimeError):
    """A worker's config or model differs from what the run was started with."""

    exit_code = EXIT_CONFLICT


class TransientError(MinescanError, OSError):
    """A fault that may go away on retry (storage 5xx, connection reset)."""

    exit_code = EXIT_TRANSIENT


class CannotWriteError(MinescanError, PermissionError):
    """The output location is read-only or refuses this user."""

    exit_code = EXIT_CANT_WRITE


class NoSpaceError(MinescanError, OSError):
    """The disk is full, a quota is exhausted, or a file hit the file-size limit."""

    exit_code = EXIT_NO_SPACE


_CANT_WRITE = {errno.EROFS, errno.EACCES, errno.EPERM}
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def from_os_error(exc: BaseException) -> MinescanError | None:
    """The user-facing error for an operating-system fault while reading or writing files,
    or None when `exc` is not one (then it is a bug and keeps its traceback)."""
    import re
    import shutil

    if isinstance(exc, shutil.Error):  # copytree's list of (src, dst, "[Errno N] ...")
        reasons = [str(item[2]) for item in exc.args[0]] if exc.args and isinstance(exc.args[0], list) else []
        codes = [int(m.group(1)) for r in reasons if (m := re.search(r"\[Errno (\d+)\]", r))]
        if not codes:
            return None
        exc = OSError(codes[0], os.strerror(codes[0]), exc.args[0][0][1])
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    where = exc.filename or "a file"
    if exc.errno in _NO_SPACE:
        return NoSpaceError(
            f"cannot write {where}: {os.strerror(exc.errno)}; free space, raise the quota or the "
            "file-size limit (or give the pod more ephemeral storage), then re-run"
        )
    if exc.errno in _CANT_WRITE:
        return CannotWriteError(
            f"cannot write {where}: {os.strerror(exc.errno)}; choose a writable output "
            "location or fix its permissions, then re-run"
        )
    return None
