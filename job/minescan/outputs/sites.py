"""National outputs: the sites table in every format an analyst or a GIS may ask for.

`write_sites` writes `sites.parquet` (GeoParquet 1.1), `sites.geojson` (RFC 7946),
`sites.kml` (Google Earth), `sites.csv` and `summary.md` (the short version of the report;
`national.write_national` adds the map, the report and the GIS files).
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
from ._kml import google_maps_url, number, write_placemarks_kml
from ._site_view import RANKING_RULE, area_ha, flag, known_count, rank_sites
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
    "summary": "summary.md",
}
#: how many sites `summary.md` lists, in the report's ranking
TOP_SITES = 20
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
    out_dir: str | os.PathLike[str],
    sites_df: pd.DataFrame,
    *,
    title: str,
    summary: dict[str, Any],
    warnings: tuple[str, ...] = (),
    shown: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write the sites tables into `out_dir`; returns {output name: path} (see SITE_FILES).

    `warnings` (the SYNTHETIC notice, when it applies) head summary.md and the KML;
    `shown` is the table as people see it (statuses the run could not know as NA) for
    summary.md, default `sites_df`.
    """
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
    # the magenta "not registered" outline only where a register was given
    known = shown is None or bool(flag(shown, "registered").notna().all())
    kml = {"name": title, "label": lambda row: row["site_id"], "rows": rows, "about": " ".join(warnings),
           "unregistered": (lambda row: not row["registered"]) if known else None}
    if shapes is None:
        write_placemarks_kml(paths["kml"], table, fields=_fields, **kml)
    else:  # a national table: the balloon shows the ExtendedData, see KML_COLUMNS
        write_placemarks_kml(paths["kml"], table, fields=None, shapes=shapes, data_columns=KML_COLUMNS, **kml)
    write_table_csv(paths["csv"], table)
    page = summary_markdown(table if shown is None else shown.drop(columns=["geometry"], errors="ignore"),
                            title=title, summary=summary, warnings=warnings)
    write_text_atomic(paths["summary"], page)
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


def summary_markdown(
    sites: pd.DataFrame, *, title: str, summary: dict[str, Any], warnings: tuple[str, ...] = ()
) -> str:
    """`summary.md`: warnings, totals, counts per impact class, the top-ranked sites, then
    `summary`'s items. The full story is report.html."""
    hectares = area_ha(sites)
    registered, protected = flag(sites, "registered"), flag(sites, "protected")
    lines = [f"# {title}", ""]
    lines += [f"> **⚠ {_md(text)}**\n" for text in warnings]
    lines += [
        f"{len(sites)} sites from {int(sites['n_detections'].sum())} detections, "
        f"{number(float(hectares.sum()), 1)} ha in total; {_count(~registered)} not matched by any register, "
        f"{_count(protected)} on protected land. The full report is `report.html` (and `report.pdf`); "
        "the interactive map is `map.html`.",
        "",
        "## Sites per impact class",
        "",
        "| impact class | sites | detections | area (ha) | unregistered | on protected land |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for cls in IMPACT_CLASSES:
        of_class = (sites["impact_class"] == cls).to_numpy()
        lines.append(
            f"| {cls} | {int(of_class.sum())} | {int(sites.loc[of_class, 'n_detections'].sum())} "
            f"| {number(float(hectares[of_class].sum()), 1)} "
            f"| {_count(~registered[of_class])} | {_count(protected[of_class])} |"
        )
    ranked = rank_sites(sites, limit=TOP_SITES)
    rows = records(ranked.drop(columns=["geometry"], errors="ignore"))
    lines += [
        "",
        f"## Top {len(rows)} sites",
        "",
        _md(RANKING_RULE),
        "",
        "| # | site | register | protected land | impact | area (ha) | p(mine) mean | detections | lon | lat | map |",
        "|---:|---|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row, hectare in zip(rows, area_ha(ranked), strict=True):
        lines.append(
            f"| {row['rank']} | {_md(row['site_id'])} | {_register_text(row)} | {_md(row.get('protected_names') or '')} "
            f"| {row['impact_class']} | {number(float(hectare), 1)} | {number(row['p_mine_mean'])} "
            f"| {row['n_detections']} | {number(row['lon'], 6)} | {number(row['lat'], 6)} "
            f"| [Google Maps]({google_maps_url(row['lat'], row['lon'])}) |"
        )
    if summary:
        lines += ["", "## Run", ""]
        lines += [f"- **{_md(str(key))}**: {_md(display_text(value))}" for key, value in summary.items()]
    return "\n".join(lines) + "\n"


def _count(series: pd.Series) -> str:
    """How many are True, or 'unknown' when the run could not tell (no register or layer)."""
    count = known_count(series)
    return "unknown" if count is None else str(count)


def _register_text(row: dict[str, Any]) -> str:
    if row.get("registered") is None:
        return "unknown"
    if not row["registered"]:
        return "**not registered**"
    return _md(f"{row['register_source']} {row['register_name'] or row['register_id']}")


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
