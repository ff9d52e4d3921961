"""One exception root, and the exit codes Kubernetes acts on.

Every error a user can cause derives from `MinescanError` and from the matching builtin,
so callers can catch either. Each carries an exit code: the map Job's podFailurePolicy
fails an index for good on `EXIT_BAD_INPUT`/`EXIT_BAD_MODEL`/`EXIT_CONFLICT` and retries
everything else (see README, "Exit codes").
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: retried, then reported
EXIT_USAGE = 2  # click's own code for a malformed command line
EXIT_BAD_INPUT = 3  # the scene, manifest or points file is wrong: retrying cannot help
EXIT_BAD_MODEL = 4  # model directory unreadable, incomplete or its hash does not match
EXIT_CONFLICT = 5  # run config/model differs from the one the run was started with
EXIT_TRANSIENT = 75  # EX_TEMPFAIL: storage or network hiccup, safe to retry

#: exit codes after which re-running the same pod cannot succeed
PERMANENT_EXIT_CODES = (EXIT_BAD_INPUT, EXIT_BAD_MODEL, EXIT_CONFLICT)


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
