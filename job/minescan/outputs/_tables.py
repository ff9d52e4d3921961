"""The detection and site table schemas, and the writers both tables share.

A table is a pandas DataFrame whose first columns are the schema's, in order, with the
schema's dtypes; any further columns ride along unchanged. `coerce_table` is the one place
that checks a frame against its schema, so every format is written from the same values.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..models.networks import IMPACT_CLASSES
from ._atomic import atomic_path

if TYPE_CHECKING:
    import pandas as pd

#: one row per detection (a kept or flagged discovery cell), docs/ARCHITECTURE.md, "Data contracts"
DETECTION_COLUMNS: dict[str, str] = {
    "scene_id": "str",
    "cell_row": "int32",
    "cell_col": "int32",
    "pixel_row": "int32",
    "pixel_col": "int32",
    "lon": "float64",
    "lat": "float64",
    "p_mine": "float32",
    "impact_class": "str",
    "p_high": "float32",
    "p_low": "float32",
    "p_no_ore": "float32",
    "kept": "bool",  # False: `no_ore` won but the run keeps and flags such cells
    "model_version": "str",
    "global_row": "Int64",  # national grid cell (scene on the manifest grid); null otherwise
    "global_col": "Int64",
}

#: one row per site (a cluster of detections), docs/ARCHITECTURE.md, "Data contracts"
SITE_COLUMNS: dict[str, str] = {
    "site_id": "str",
    "lon": "float64",  # p_mine-weighted centroid of the site's detections
    "lat": "float64",
    "n_detections": "int64",
    "p_mine_max": "float32",
    "p_mine_mean": "float32",
    "impact_class": "str",  # highest mean probability over the site's kept detections
    "p_high": "float32",
    "p_low": "float32",
    "p_no_ore": "float32",
    "scenes": "str",  # ';'-joined scene ids
    "min_lon": "float64",
    "min_lat": "float64",
    "max_lon": "float64",
    "max_lat": "float64",
    "area_km2": "float64",
}

#: map colours per impact class (RGB): high red, low yellow, no_ore grey
IMPACT_RGB: dict[str, tuple[int, int, int]] = {
    "high": (214, 39, 40),
    "low": (240, 200, 0),
    "no_ore": (140, 140, 140),
}


def impact_hex(impact_class: str) -> str:
    """CSS colour of an impact class."""
    return "#{:02x}{:02x}{:02x}".format(*IMPACT_RGB[impact_class])


def coerce_table(df: pd.DataFrame, columns: Mapping[str, str], what: str) -> pd.DataFrame:
    """A copy of `df` with the schema's columns first, cast to the schema's dtypes.

    Raises InputError naming the missing columns, a column with gaps (only the nullable
    Int64 columns may have them), one that cannot take its dtype (text in a number
    column) or an unknown impact class.
    """
    missing = [name for name in columns if name not in df.columns]
    if missing:
        raise InputError(f"{what} table lacks columns {missing}: build it with the full schema")
    extras = [name for name in df.columns if name not in columns]
    out = df.loc[:, [*columns, *extras]].reset_index(drop=True)
    for name, dtype in columns.items():
        # astype would quietly turn a gap into True (bool) or the text "nan"; only Int64 may be null
        if dtype != "Int64" and out[name].isna().any():
            raise InputError(f"{what} column {name!r} has missing values: fill every row")
        try:
            out[name] = out[name].astype(dtype)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{what} column {name!r} cannot be {dtype}: {exc}") from exc
    unknown = sorted(set(out["impact_class"]) - set(IMPACT_CLASSES), key=str)
    if unknown:
        raise InputError(f"{what} impact_class has {unknown}; allowed: {list(IMPACT_CLASSES)}")
    return out


def empty_table(columns: Mapping[str, str]) -> pd.DataFrame:
    """A 0-row frame with the schema's columns and dtypes."""
    import pandas as pd

    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in columns.items()})


def write_points_geoparquet(path: str | os.PathLike[str], df: pd.DataFrame) -> None:
    """GeoParquet 1.1 with WKB points from lon/lat (EPSG:4326) and a covering bbox column."""
    import geopandas as gpd

    # lon/lat are the columns of record: a geometry (or bbox) the caller brought is rebuilt
    points = gpd.points_from_xy(df["lon"], df["lat"])
    attributes = df.drop(columns=["geometry", "bbox"], errors="ignore")
    gdf = gpd.GeoDataFrame(attributes, geometry=points, crs="EPSG:4326")
    with atomic_path(path) as tmp:
        gdf.to_parquet(tmp, index=False, schema_version="1.1.0", write_covering_bbox=True)


def read_points_geoparquet(
    path: str | os.PathLike[str], columns: Mapping[str, str], what: str
) -> pd.DataFrame:
    """The table of a file `write_points_geoparquet` wrote, without geometry and bbox columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except FileNotFoundError as exc:
        raise InputError(f"{what} file {path} does not exist: was its shard completed?") from exc
    except pa.ArrowInvalid as exc:
        raise InputError(f"{what} file {path} is not Parquet ({exc}): rewrite it") from exc
    meta = table.schema.metadata or {}
    if b"geo" not in meta:
        raise InputError(f"{what} file {path} has no GeoParquet 'geo' metadata: rewrite it")
    geo = json.loads(meta[b"geo"])
    drop = {geo["primary_column"]}
    for column in geo["columns"].values():
        drop.update(field[0] for field in column.get("covering", {}).get("bbox", {}).values())
    table = table.drop_columns([name for name in table.column_names if name in drop])
    return coerce_table(table.to_pandas(), columns, what)


def write_table_csv(path: str | os.PathLike[str], df: pd.DataFrame) -> None:
    """UTF-8 CSV with a header row; lon/lat are plain columns, no geometry."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")


def _column_values(series: pd.Series) -> list[Any]:
    """One column as JSON-native values: None where missing, floats as their shortest text."""
    values = series.to_numpy(dtype=object, na_value=None)
    if series.dtype == np.float32:
        # str() of a float32 is its shortest round-trip text (0.87, not 0.8700000047683716)
        values = [None if v is None else float(str(np.float32(v))) for v in values]
    out = []
    for value in values:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out.append(value)
    return out


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of `df` as dicts of JSON-native values (for GeoJSON properties and HTML)."""
    columns = {name: _column_values(df[name]) for name in df.columns}
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def display_text(value: Any) -> str:
    """A summary value as text for people: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
