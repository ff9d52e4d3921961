"""National outputs: the sites table in every format an analyst or a GIS may ask for.

`write_sites` writes `sites.parquet` (GeoParquet 1.1), `sites.geojson` (RFC 7946),
`sites.kml` (Google Earth), `sites.csv`, `map.html` (offline page) and `summary.md`.
A GeoDataFrame of sites is written with its footprint polygons (the KML placemark holds
the pin and the polygon); a plain DataFrame as points at lon/lat. The caller builds the
sites (`minescan.sites.national`); this module only writes them.
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
    write_geoparquet,
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
#: how many sites `map.html` plots and tabulates (the strongest); every site is in the CSV
MAP_SITES = 5000
#: the columns `sites.kml` carries as ExtendedData: what an analyst looks at in Google
#: Earth (every column is in the GeoParquet, GeoJSON and CSV)
KML_COLUMNS = ("site_id", "impact_class", "p_mine_max", "n_detections", "area_ha", "registered",
               "register_source", "register_id", "register_name", "register_distance_m", "protected",
               "protected_names", "protected_ha", "regions", "review", "review_note", "lon", "lat")


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
    shapes = _footprints(sites)
    table = sites.drop(columns=["geometry", "bbox"], errors="ignore")
    paths = {key: Path(out_dir) / name for key, name in SITE_FILES.items()}
    if shapes is None:
        write_points_geoparquet(paths["parquet"], table)
    else:
        write_geoparquet(paths["parquet"], sites)
    rows = records(table)
    write_text_atomic(paths["geojson"], sites_geojson_text(table, shapes, rows))
    if shapes is None:
        write_placemarks_kml(paths["kml"], table, name=title, label=lambda row: row["site_id"], fields=_fields,
                             rows=rows)
    else:  # a national table: the balloon shows the ExtendedData, see KML_COLUMNS
        write_placemarks_kml(paths["kml"], table, name=title, label=lambda row: row["site_id"], fields=None,
                             shapes=shapes, data_columns=KML_COLUMNS, rows=rows)
    write_table_csv(paths["csv"], table)
    strongest = table.sort_values("p_mine_max", ascending=False, kind="stable").head(MAP_SITES)
    shown = summary if len(strongest) == len(table) else {
        **summary, "map": f"the {len(strongest)} sites of highest p(mine) of {len(table)}; all are in sites.csv"}
    write_text_atomic(paths["map"], map_html(strongest, title=title, summary=shown))
    write_text_atomic(paths["summary"], summary_markdown(table, title=title, summary=summary))
    return paths


def _footprints(sites: pd.DataFrame) -> list | None:
    """The sites' polygons when the table is a GeoDataFrame with a geometry, else None."""
    geometry = getattr(sites, "geometry", None) if "geometry" in sites.columns else None
    return None if geometry is None else list(geometry)


def sites_geojson(sites: pd.DataFrame, shapes: list | None = None) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection: footprints (or lon/lat points), every column a property."""
    return json.loads(sites_geojson_text(sites, shapes))


def sites_geojson_text(sites: pd.DataFrame, shapes: list | None = None, rows: list | None = None) -> str:
    """`sites_geojson` as text, built with one vectorised geometry encoding (10⁵ sites)."""
    import numpy as np
    import shapely

    rows = records(sites) if rows is None else rows
    if shapes is None:
        geometries = [json.dumps({"type": "Point", "coordinates": [row["lon"], row["lat"]]}) for row in rows]
    else:
        geometries = shapely.to_geojson(np.asarray(shapes, dtype=object)).tolist()
    features = ",\n".join(
        f'{{"type": "Feature", "id": {json.dumps(row["site_id"], ensure_ascii=False)}, "geometry": {geometry}, '
        f'"properties": {json.dumps(row, ensure_ascii=False, allow_nan=False)}}}'
        for row, geometry in zip(rows, geometries, strict=True)
    )
    return f'{{"type": "FeatureCollection", "features": [\n{features}\n]}}'


def summary_markdown(sites: pd.DataFrame, *, title: str, summary: dict[str, Any]) -> str:
    """`summary.md`: totals, counts per impact class, the top sites, then `summary`'s items."""
    unregistered = sites[~sites["registered"].to_numpy(bool)]
    protected = sites[sites["protected"].to_numpy(bool)]
    lines = [
        f"# {title}",
        "",
        (f"{len(sites)} sites from {int(sites['n_detections'].sum())} detections, "
         f"{number(float(sites['area_ha'].sum()), 1)} ha in total; "
         f"{len(unregistered)} not matched by any register, {len(protected)} on protected land."),
        "",
        "## Sites per impact class",
        "",
        "| impact class | sites | detections | area (ha) | unregistered | on protected land |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for cls in IMPACT_CLASSES:
        of_class = sites[sites["impact_class"] == cls]
        lines.append(
            f"| {cls} | {len(of_class)} | {int(of_class['n_detections'].sum())} "
            f"| {number(float(of_class['area_ha'].sum()), 1)} "
            f"| {int((~of_class['registered'].to_numpy(bool)).sum())} | {int(of_class['protected'].sum())} |"
        )
    top = records(sites.sort_values("p_mine_max", ascending=False, kind="stable").head(TOP_SITES))
    lines += [
        "",
        f"## Top {len(top)} sites by p(mine)",
        "",
        "| # | site | p(mine) max | impact | detections | area (ha) | register | protected land | lon | lat | map |",
        "|---:|---|---:|---|---:|---:|---|---|---:|---:|---|",
    ]
    for rank, row in enumerate(top, start=1):
        register = _md(f"{row['register_source']} {row['register_name'] or row['register_id']}") \
            if row["registered"] else "**not registered**"
        lines.append(
            f"| {rank} | {_md(row['site_id'])} | {number(row['p_mine_max'])} "
            f"| {row['impact_class']} | {row['n_detections']} | {number(row['area_ha'], 1)} "
            f"| {register} | {_md(row['protected_names'] or '')} "
            f"| {number(row['lon'], 6)} | {number(row['lat'], 6)} "
            f"| [Google Maps]({google_maps_url(row['lat'], row['lon'])}) |"
        )
    if summary:
        lines += ["", "## Run", ""]
        lines += [f"- **{_md(str(key))}**: {_md(display_text(value))}" for key, value in summary.items()]
    return "\n".join(lines) + "\n"


def _fields(row: dict[str, Any]) -> list[tuple[str, Any]]:
    register = (f"{row['register_source']}: {row['register_name'] or ''} ({row['register_id']}), "
                f"{number(row['register_distance_m'], 0)} m" if row["registered"] else "not registered")
    return [
        ("site", row["site_id"]),
        ("impact", row["impact_class"]),
        ("p(mine) max", number(row["p_mine_max"])),
        ("p(mine) mean", number(row["p_mine_mean"])),
        ("p(high)", number(row["p_high"])),
        ("p(low)", number(row["p_low"])),
        ("p(no_ore)", number(row["p_no_ore"])),
        ("detections", row["n_detections"]),
        ("area ha", number(row["area_ha"], 1)),
        ("register", register),
        ("protected land", f"{row['protected_names']} ({number(row['protected_ha'], 1)} ha)" if row["protected"] else ""),
        ("regions", row["regions"] or ""),
        ("review", f"{row['review'] or ''} {row['review_note'] or ''}".strip()),
        ("scenes", row["scenes"]),
        ("lon, lat", f"{number(row['lon'], 6)}, {number(row['lat'], 6)}"),
    ]


def _md(text: Any) -> str:
    """`text` safe inside a Markdown table cell or list item."""
    escaped = str(text).replace("\\", "\\\\").replace("\n", " ")
    for char in "|<>*[]`":
        escaped = escaped.replace(char, "\\" + char)
    return escaped
