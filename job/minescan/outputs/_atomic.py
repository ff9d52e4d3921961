"""Write-then-rename, so a crash never leaves a half-written output where a reader looks.

The temp name sits in the target's own directory (a rename is atomic only within one file
system) and starts with a dot, so listings and globs of the real names skip it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..storage import replace_dir, write_local_atomic


def _temp_sibling(path: Path, tag: str) -> Path:
    # The real suffix stays last: some writers (GDAL) pick their format from it.
    return path.with_name(f".{path.stem}.{tag}-{uuid.uuid4().hex[:12]}{path.suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp file path next to `path`; on success fsync it and move it onto `path`,
    else delete it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(target, "tmp")
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Like `atomic_path` for a directory store (zarr): build it aside, then swap it in with
    `storage.replace_dir`, which keeps the old store until the new one stands in its place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(target, "tmp")
    try:
        yield tmp
        replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` as UTF-8 to `path`, whole or not at all (`storage.write_local_atomic`)."""
    write_local_atomic(path, text.encode("utf-8"))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
