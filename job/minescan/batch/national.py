"""A run's committed national sites, read back; and `minescan diff`, which compares two runs.

Only a committed national set is read (its marker exists, and `sites.parquet` matches the
hash the marker recorded); the change outputs are committed the same way, create-once, so a
diff never overwrites anything and never leaves half a result (`batch.commit`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .. import storage
from ..errors import ConflictError, InputError
from . import commit
from .layout import RunLayout

if TYPE_CHECKING:
    import geopandas as gpd

    from ..sites.diff import DiffOptions, SiteChanges

#: the national file a diff reads (written by `outputs.write_sites`)
SITES_PARQUET = "sites.parquet"


def read_national_sites(run: str) -> gpd.GeoDataFrame:
    """The committed national sites of a run, checked against their marker's hash."""
    from ..outputs import SITE_COLUMNS, read_geoparquet

    national = RunLayout(run).national
    committed = commit.read_committed(national)
    if committed is None:
        raise InputError(f"{run} has no committed national sites ({national}): run `minescan reduce` on it first")
    data = commit.read_verified(committed, SITES_PARQUET)
    with tempfile.TemporaryDirectory(prefix="minescan-diff-") as tmp:
        local = Path(tmp) / SITES_PARQUET
        local.write_bytes(data)
        return read_geoparquet(local, SITE_COLUMNS, f"national sites of {storage.redact(run)}")


def diff_runs(before_run: str, after_run: str, out: str, options: DiffOptions | None = None) -> SiteChanges:
    """Compare the national sites of two runs and commit the changes at `out` (new or empty)."""
    from ..outputs.changes import write_changes
    from ..sites.diff import diff_sites

    if commit.read_committed(out) is not None or storage.list_dir(out):
        raise ConflictError(f"{out} already holds files: give `minescan diff` a new --out directory")
    before = read_national_sites(before_run)
    after = read_national_sites(after_run)
    result = diff_sites(before, after, options)
    result.summary.update({"before": storage.redact(before_run), "after": storage.redact(after_run)})

    def fill(staging: Path) -> dict:
        write_changes(staging, result.changes, result.summary)
        return {"kind": "site-changes", "summary": result.summary}

    if not commit.publish(out, fill):
        raise ConflictError(f"another diff committed {out} first; its result stands")
    return result
