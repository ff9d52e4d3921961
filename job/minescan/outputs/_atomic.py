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


def _temp_sibling(path: Path, tag: str) -> Path:
    # The real suffix stays last: some writers (GDAL) pick their format from it.
    return path.with_name(f".{path.stem}.{tag}-{uuid.uuid4().hex[:12]}{path.suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp file path next to `path`; on success move it onto `path`, else delete it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(target, "tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Like `atomic_path` for a directory store (zarr): build it aside, then swap it in.

    POSIX cannot rename a directory onto a non-empty one, so an existing store is first
    renamed aside and removed after the swap; a crash between the two renames leaves the
    old store under its hidden name and nothing half-written under the real one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(target, "tmp")
    try:
        yield tmp
        old = None
        if target.exists():
            old = _temp_sibling(target, "old")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None and old.is_dir():
            shutil.rmtree(old)
        elif old is not None:
            old.unlink()
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` as UTF-8 to `path` via `atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
