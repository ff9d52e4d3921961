"""Writing `minescan diff` results into a local directory: the change table and its summary.

`changes.parquet` (GeoParquet 1.1), `changes.geojson` (RFC 7946), `changes.csv`,
`summary.md` and `summary.json`. The batch room commits the directory whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

