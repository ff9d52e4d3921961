"""National outputs: the sites table in every format an analyst or a GIS may ask for.

`write_sites` writes `sites.parquet` (GeoParquet 1.1 points), `sites.geojson` (RFC 7946),
`sites.kml` (Google Earth), `sites.csv` and `summary.md` (the short version of the report;
`national.write_national` adds the map, the report and the GIS files).
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
from ._kml import google_maps_url, number, write_placemarks_kml
from ._site_view import RANKING_RULE, area_ha, flag, footprints, has_footprints, rank_sites
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
    "summary": "summary.md",
}
#: how many sites `summary.md` lists, in the report's ranking
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
    out_dir: str | os.PathLike[str],
    sites_df: pd.DataFrame,
    *,
    title: str,
    summary: dict[str, Any],
    warnings: tuple[str, ...] = (),
) -> dict[str, Path]:
    """Write the sites tables into `out_dir`; returns {output name: path} (see SITE_FILES).

    `warnings` (the SYNTHETIC notice, when it applies) head summary.md and the KML.
    """
    sites = coerce_sites(sites_df)
    paths = {key: Path(out_dir) / name for key, name in SITE_FILES.items()}
    write_points_geoparquet(paths["parquet"], sites)
    write_text_atomic(paths["geojson"], json.dumps(sites_geojson(sites), ensure_ascii=False, allow_nan=False))
    write_placemarks_kml(
        paths["kml"], sites.drop(columns=["geometry"], errors="ignore"), name=title,
        label=lambda row: row["site_id"], fields=_fields, about=" ".join(warnings),
        geometries=list(footprints(sites)) if "geometry" in sites else None,
        unregistered=lambda row: row.get("registered") is False,
    )
    write_table_csv(paths["csv"], sites)
    write_text_atomic(paths["summary"], summary_markdown(sites, title=title, summary=summary, warnings=warnings))
    return paths


def sites_geojson(sites: pd.DataFrame) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection, every column but `geometry` as a property, no `crs`:
    footprint polygons where the table has them, else lon/lat points."""
    import shapely

    own = "geometry" in sites and has_footprints(sites)
    shapes = footprints(sites) if own else None
    features = [
        {
            "type": "Feature",
            "id": row["site_id"],
            "geometry": json.loads(shapely.to_geojson(shapes.iloc[k])) if own else
            {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
            "properties": row,
        }
        for k, row in enumerate(records(sites.drop(columns=["geometry"], errors="ignore")))
    ]
    return {"type": "FeatureCollection", "features": features}


def summary_markdown(
    sites: pd.DataFrame, *, title: str, summary: dict[str, Any], warnings: tuple[str, ...] = ()
) -> str:
    """`summary.md`: warnings, totals, counts per impact class, the top-ranked sites, then
    `summary`'s items. The full story is report.html."""
    hectares = area_ha(sites)
    lines = [f"# {title}", ""]
    lines += [f"> **⚠ {_md(text)}**\n" for text in warnings]
    lines += [
        f"{len(sites)} sites from {int(sites['n_detections'].sum())} detections, "
        f"{number(float(hectares.sum()), 1)} ha in total. The full report is `report.html` "
        "(and `report.pdf`); the interactive map is `map.html`.",
        "",
        "## Sites per impact class",
        "",
        "| impact class | sites | detections | area (ha) |",
        "|---|---:|---:|---:|",
    ]
    for cls in IMPACT_CLASSES:
        of_class = sites["impact_class"] == cls
        lines.append(
            f"| {cls} | {int(of_class.sum())} | {int(sites.loc[of_class, 'n_detections'].sum())} "
            f"| {number(float(hectares[of_class].sum()), 1)} |"
        )
    ranked = rank_sites(sites).head(TOP_SITES)
    top = records(ranked.drop(columns=["geometry"], errors="ignore"))
    registered = flag(ranked, "registered").tolist()
    lines += [
        "",
        f"## Top {len(top)} sites",
        "",
        _md(RANKING_RULE),
        "",
        "| # | site | registered | impact | area (ha) | p(mine) mean | p(mine) max | detections | lon | lat | map |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row, known, hectare in zip(top, registered, area_ha(ranked), strict=True):
        lines.append(
            f"| {row['rank']} | {_md(row['site_id'])} | {_yes_no(known)} "
            f"| {row['impact_class']} | {number(float(hectare), 2)} "
            f"| {number(row['p_mine_mean'])} | {number(row['p_mine_max'])} | {row['n_detections']} "
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


def _yes_no(known: Any) -> str:
    return "yes" if known is True else "no" if known is False else "unknown"


def _md(text: Any) -> str:
    """`text` safe inside a Markdown table cell or list item."""
    escaped = str(text).replace("\\", "\\\\").replace("\n", " ")
    for char in "|<>*[]`":
        escaped = escaped.replace(char, "\\" + char)
    return escaped
