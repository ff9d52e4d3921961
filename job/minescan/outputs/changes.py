"""Writing `minescan diff` results: the change table and its summary, published whole.

`<out>/changes.parquet` (GeoParquet 1.1), `changes.geojson` (RFC 7946), `changes.csv`,
`summary.md` and `summary.json`. The files are written in a staging directory beside
`out` and renamed onto it (or uploaded, for gs://) only when all are complete; an `out`
that already holds files is never touched.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import storage
from ..errors import ConflictError
from ._atomic import write_text_atomic
from ._tables import display_text, records, write_geoparquet, write_table_csv

if TYPE_CHECKING:
    import geopandas as gpd

CHANGE_FILES = ("changes.parquet", "changes.geojson", "changes.csv", "summary.md", "summary.json")


def write_changes(out_dir: Path, changes: gpd.GeoDataFrame, summary: dict[str, Any]) -> None:
    """Every change output into the local directory `out_dir`."""
    from shapely.geometry import mapping

    table = changes.drop(columns=changes.geometry.name)
    write_geoparquet(out_dir / "changes.parquet", changes)
    features = [
        {"type": "Feature", "geometry": mapping(geom), "properties": row}
        for geom, row in zip(changes.geometry, records(table), strict=True)
    ]
    write_text_atomic(out_dir / "changes.geojson",
                      json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    write_table_csv(out_dir / "changes.csv", table)
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(out_dir / "summary.md", changes_markdown(table, summary))


def changes_markdown(table, summary: dict[str, Any]) -> str:
    counts = summary["changes"]
    lines = [
        "# What changed between two runs",
        "",
        (f"Before: `{summary.get('before', '')}` ({summary['sites_before']} sites, {summary['area_before_ha']} ha); "
         f"after: `{summary.get('after', '')}` ({summary['sites_after']} sites, {summary['area_after_ha']} ha)."),
        "",
        "| change | sites |",
        "|---|---:|",
        *[f"| {name} | {n} |" for name, n in counts.items()],
        "",
        f"Ground newly disturbed: {summary['gained_ha']} ha; no longer detected: {summary['lost_ha']} ha.",
        "",
        "## Largest changes",
        "",
        "| change | site | before | area before (ha) | area after (ha) | Δ (ha) | registered | protected land |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    moved = table[table["change"] != "unchanged"]
    top = moved.reindex(moved["area_change_ha"].abs().sort_values(ascending=False).index).head(30)
    for row in records(top):
        lines.append(
            f"| {row['change']} | {row['site_id']} | {row['before_ids']} | {row['area_before_ha']:.1f} "
            f"| {row['area_after_ha']:.1f} | {row['area_change_ha']:+.1f} | {'yes' if row['registered'] else 'no'} "
            f"| {row['protected_names'] or ''} |"
        )
    lines += ["", "## Settings", "", f"- {display_text(summary['options'])}"]
    return "\n".join(lines) + "\n"


def check_free(out: str) -> None:
    """ConflictError unless `out` is absent or an empty directory: results never overwrite."""
    taken = storage.list_dir(out)
    if taken or (not storage.is_remote(out) and Path(out).is_file()):
        raise ConflictError(f"{out} already holds {taken[:5] or 'a file'}: give `minescan diff` a new --out directory")


def publish_changes(out: str, changes: gpd.GeoDataFrame, summary: dict[str, Any]) -> None:
    """Write the outputs aside and publish them at `out` (local or gs://) in one step."""
    check_free(out)
    if storage.is_remote(out):
        with tempfile.TemporaryDirectory(prefix="minescan-changes-") as tmp:
            write_changes(Path(tmp), changes, summary)
            storage.put_dir(tmp, out)
        return
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.staging-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        write_changes(staging, changes, summary)
        if target.exists():
            target.rmdir()  # empty (checked above); rmdir refuses anything else
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
