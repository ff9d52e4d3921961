"""A scene's detections table: GeoParquet 1.1 for machines, CSV and KML for people."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._kml import number, write_placemarks_kml
from ._tables import (
    DETECTION_COLUMNS,
    coerce_table,
    empty_table,
    read_points_geoparquet,
    read_points_table,
    write_points_geoparquet,
    write_table_csv,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_WHAT = "detections"


def empty_detections() -> pd.DataFrame:
    """A 0-row detections table with the right columns and dtypes (a scene with no mines)."""
    return empty_table(DETECTION_COLUMNS)


def coerce_detections(df: pd.DataFrame) -> pd.DataFrame:
    """`df` checked against DETECTION_COLUMNS and cast to its dtypes (extras kept after)."""
    return coerce_table(df, DETECTION_COLUMNS, _WHAT)


def write_detections_geoparquet(path: str | os.PathLike[str], df: pd.DataFrame) -> None:
    """GeoParquet 1.1 points in EPSG:4326 with a covering bbox; a 0-row table is fine."""
    write_points_geoparquet(path, coerce_detections(df))


def read_detections(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The detections table of a GeoParquet file (no geometry column: lon/lat carry it)."""
    return read_points_geoparquet(path, DETECTION_COLUMNS, _WHAT)


def read_detections_table(source: str | os.PathLike[str] | bytes, name: str | None = None) -> pa.Table:
    """A detections file's columns as Arrow, checked for the schema's columns but not cast:
    `detections_from_tables` joins many (a national run's 10³ shards) and casts them once."""
    return read_points_table(source, DETECTION_COLUMNS, _WHAT, name)


def detections_from_tables(tables: Sequence[pa.Table]) -> pd.DataFrame:
    """One detections table from `read_detections_table`'s tables, in order.

    Joining Arrow tables and converting once takes a tenth of the time of converting and
    coercing each shard's table (3 ms each) and concatenating the frames."""
    import pyarrow as pa

    if not tables:
        return empty_detections()
    # permissive: an int32 column in one shard and int64 in another join as int64
    joined = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    return coerce_detections(joined.to_pandas())


def write_detections_csv(path: str | os.PathLike[str], df: pd.DataFrame) -> None:
    """UTF-8 CSV, one row per detection, lon/lat columns, no geometry."""
    write_table_csv(path, coerce_detections(df))


def write_detections_kml(path: str | os.PathLike[str], df: pd.DataFrame, *, name: str) -> None:
    """KML for Google Earth: a Placemark per detection, a Folder and colour per impact class."""
    write_placemarks_kml(path, coerce_detections(df), name=name, label=_label, fields=_fields)


def _label(row: dict[str, Any]) -> str:
    flag = "" if row["kept"] else " (flagged)"
    return f"{row['impact_class']} {number(row['p_mine'], 2)}{flag}"


def _fields(row: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("p(mine)", number(row["p_mine"])),
        ("impact", row["impact_class"] + ("" if row["kept"] else " (kept and flagged)")),
        ("p(high)", number(row["p_high"])),
        ("p(low)", number(row["p_low"])),
        ("p(no_ore)", number(row["p_no_ore"])),
        ("scene", row["scene_id"]),
        ("cell (row, col)", f"{row['cell_row']}, {row['cell_col']}"),
        ("centre pixel (row, col)", f"{row['pixel_row']}, {row['pixel_col']}"),
        ("lon, lat", f"{number(row['lon'], 6)}, {number(row['lat'], 6)}"),
        ("model", row["model_version"]),
    ]
