"""National outputs: the sites table in every format an analyst or a GIS may ask for.

`write_sites` writes `sites.parquet` (GeoParquet 1.1 points), `sites.geojson` (RFC 7946),
`sites.kml` (Google Earth), `sites.csv`, `map.html` (offline page) and `summary.md`.
The caller builds the sites (clustering is the reduce's job); this module only writes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..models.networks import IMPACT_CLASSES
from ._atomic import write_text_atomic
from ._html import map_html
from ._kml import google_maps_url, number, write_placemarks_kml
from ._tables import (
    SITE_COLUMNS,
    coerce_table,
    display_text,
    empty_table,
    records,
    write_points_geoparquet,
    write_table_csv,
)

if TYPE_CHECKING:
    import pandas as pd

#: output name → file name, as `write_sites` returns them
SITE_FILES: dict[str, str] = {
    "parquet": "sites.parquet",
    "geojson": "sites.geojson",
    "kml": "sites.kml",
    "csv": "sites.csv",
    "map": "map.html",
    "summary": "summary.md",
}
#: how many sites `summary.md` lists by p(mine)
TOP_SITES = 20


def empty_sites() -> pd.DataFrame:
    """A 0-row sites table with the right columns and dtypes (a country with no mines)."""
    return empty_table(SITE_COLUMNS)


def coerce_sites(df: pd.DataFrame) -> pd.DataFrame:
    """`df` checked against SITE_COLUMNS (and for unique site ids), cast to its dtypes."""
    sites = coerce_table(df, SITE_COLUMNS, "sites")
    duplicated = sites.loc[sites["site_id"].duplicated(), "site_id"].unique().tolist()
    if duplicated:
        raise InputError(f"sites table repeats site_id {duplicated[:5]}: give every site its own id")
    return sites


def write_sites(
    out_dir: str | os.PathLike[str], sites_df: pd.DataFrame, *, title: str, summary: dict[str, Any]
) -> dict[str, Path]:
    """Write every national output into `out_dir`; returns {output name: path} (see SITE_FILES)."""
    sites = coerce_sites(sites_df)
    paths = {key: Path(out_dir) / name for key, name in SITE_FILES.items()}
    write_points_geoparquet(paths["parquet"], sites)
    write_text_atomic(paths["geojson"], json.dumps(sites_geojson(sites), ensure_ascii=False, allow_nan=False))
    write_placemarks_kml(paths["kml"], sites, name=title, label=lambda row: row["site_id"], fields=_fields)
    write_table_csv(paths["csv"], sites)
    write_text_atomic(paths["map"], map_html(sites, title=title, summary=summary))
    write_text_atomic(paths["summary"], summary_markdown(sites, title=title, summary=summary))
    return paths


def sites_geojson(sites: pd.DataFrame) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection: lon/lat points, every column as a property, no `crs`."""
    features = [
        {
            "type": "Feature",
            "id": row["site_id"],
            "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
            "properties": row,
        }
        for row in records(sites)
    ]
    return {"type": "FeatureCollection", "features": features}


def summary_markdown(sites: pd.DataFrame, *, title: str, summary: dict[str, Any]) -> str:
    """`summary.md`: totals, counts per impact class, the top sites, then `summary`'s items."""
    rows = records(sites)
    lines = [
        f"# {title}",
        "",
        f"{len(rows)} sites from {int(sites['n_detections'].sum())} detections, "
        f"{number(float(sites['area_km2'].sum()), 2)} km² in total.",
        "",
        "## Sites per impact class",
        "",
        "| impact class | sites | detections | area (km²) |",
        "|---|---:|---:|---:|",
    ]
    for cls in IMPACT_CLASSES:
        of_class = sites[sites["impact_class"] == cls]
        lines.append(
            f"| {cls} | {len(of_class)} | {int(of_class['n_detections'].sum())} "
            f"| {number(float(of_class['area_km2'].sum()), 2)} |"
        )
    top = sorted(rows, key=lambda row: -(row["p_mine_max"] or 0.0))[:TOP_SITES]
    lines += [
        "",
        f"## Top {len(top)} sites by p(mine)",
        "",
        "| # | site | p(mine) max | p(mine) mean | impact | detections | area (km²) | lon | lat | map |",
        "|---:|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for rank, row in enumerate(top, start=1):
        lines.append(
            f"| {rank} | {_md(row['site_id'])} | {number(row['p_mine_max'])} | {number(row['p_mine_mean'])} "
            f"| {row['impact_class']} | {row['n_detections']} | {number(row['area_km2'], 3)} "
            f"| {number(row['lon'], 6)} | {number(row['lat'], 6)} "
            f"| [Google Maps]({google_maps_url(row['lat'], row['lon'])}) |"
        )
    if summary:
        lines += ["", "## Run", ""]
        lines += [f"- **{_md(str(key))}**: {_md(display_text(value))}" for key, value in summary.items()]
    return "\n".join(lines) + "\n"


def _fields(row: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("site", row["site_id"]),
        ("impact", row["impact_class"]),
        ("p(mine) max", number(row["p_mine_max"])),
        ("p(mine) mean", number(row["p_mine_mean"])),
        ("p(high)", number(row["p_high"])),
        ("p(low)", number(row["p_low"])),
        ("p(no_ore)", number(row["p_no_ore"])),
        ("detections", row["n_detections"]),
        ("area km²", number(row["area_km2"], 3)),
        ("scenes", row["scenes"]),
        ("lon, lat", f"{number(row['lon'], 6)}, {number(row['lat'], 6)}"),
    ]


def _md(text: Any) -> str:
    """`text` safe inside a Markdown table cell or list item."""
    escaped = str(text).replace("\\", "\\\\").replace("\n", " ")
    for char in "|<>*[]`":
        escaped = escaped.replace(char, "\\" + char)
    return escaped
