"""Logging and progress: bars on a terminal, one JSON object per line in a pod.

Configured once by the CLI (never at import time). Library code logs through
`logging.getLogger(__name__)` with structured `extra=` fields and reports progress
through `progress()`, which is silent when the output is not a terminal.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_state = {"json": False, "bars": False, "verbose": 0}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with any `extra=` fields as keys (for Cloud Logging)."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the moment: while a progress bar is live, rich
    redirects stderr so that log lines print above the bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(log_format: str = "auto", verbose: int = 0) -> None:
    """Route minescan's logs to stderr as text (terminal) or JSON lines (pod, pipe)."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    _state["json"] = use_json
    _state["bars"] = not use_json and sys.stderr.isatty()
    handler = _StderrHandler(sys.stderr)
    if use_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("minescan")
    root.handlers[:] = [handler]
    root.propagate = False
    set_verbosity(verbose)


def set_verbosity(verbose: int) -> None:
    """-v (more, repeatable) and -q (less, negative) from wherever they were given."""
    _state["verbose"] = verbose
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose >= 0 else logging.WARNING
    logging.getLogger("minescan").setLevel(level)
    if verbose < 2:
        # TensorFlow's C++ start-up chatter is noise for users; keep it for -vv.
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def verbosity() -> int:
    return _state["verbose"]


def json_logs() -> bool:
    """True when logs (and so error lines) are JSON: in a pod or a pipe."""
    return _state["json"]


def bars_enabled() -> bool:
    return _state["bars"]


def progress(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    """Iterate with a progress bar on a terminal; plain iteration otherwise."""
    if not _state["bars"]:
        yield from items
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
        redirect_stderr=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall time of the `with` block to `timings[stage]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
