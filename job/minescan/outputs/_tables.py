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
    import geopandas as gpd
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

#: one row per site (a cluster of detections), docs/ARCHITECTURE.md, "Data contracts";
#: docs/SITES.md says what each column means
SITE_COLUMNS: dict[str, str] = {
    "site_id": "str",  # place-derived: the national cell of the site's north-westernmost cell
    "lon": "float64",  # a point inside the footprint (the detection cell nearest the centroid)
    "lat": "float64",
    "n_detections": "int64",
    "p_mine_max": "float32",
    "p_mine_mean": "float32",
    "p_high": "float32",
    "p_low": "float32",
    "p_no_ore": "float32",
    "impact_class": "str",  # high or low: the larger mean probability over the site's cells
    "area_ha": "float64",  # footprint area on the WGS84 ellipsoid
    "perimeter_m": "float64",
    "scenes": "str",  # ';'-joined scene ids
    "registered": "bool",
    "register_source": "string",
    "register_id": "string",
    "register_name": "string",
    "register_ore": "string",
    "register_impact": "string",
    "register_risk": "string",
    "register_damage": "string",
    "register_height_m": "Float64",
    "register_volume_m3": "Float64",
    "register_distance_m": "Float64",
    "protected": "bool",
    "protected_names": "string",  # ';'-joined, most hectares first
    "protected_types": "string",
    "protected_ha": "float64",  # hectares inside any protected area, overlaps counted once
    "protected_ha_each": "string",  # ';'-joined hectares inside each named area
    "regions": "string",
    "review": "string",  # confirmed, false_positive, unsure
    "review_note": "string",
}
#: pandas dtypes that hold a missing value (all others must be filled in every row)
NULLABLE_DTYPES = ("Int64", "Float64", "string")

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
    NULLABLE_DTYPES columns may have them), one that cannot take its dtype (text in a
    number column) or an unknown impact class.
    """
    missing = [name for name in columns if name not in df.columns]
    if missing:
        raise InputError(f"{what} table lacks columns {missing}: build it with the full schema")
    extras = [name for name in df.columns if name not in columns]
    out = df.loc[:, [*columns, *extras]].reset_index(drop=True)
    for name, dtype in columns.items():
        # astype would quietly turn a gap into True (bool) or the text "nan"
        if dtype not in NULLABLE_DTYPES and out[name].isna().any():
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
    write_geoparquet(path, gpd.GeoDataFrame(attributes, geometry=points, crs="EPSG:4326"))


def write_geoparquet(path: str | os.PathLike[str], gdf: gpd.GeoDataFrame) -> None:
    """GeoParquet 1.1 of a GeoDataFrame's own geometry (EPSG:4326) with a covering bbox."""
    with atomic_path(path) as tmp:
        gdf.to_parquet(tmp, index=False, schema_version="1.1.0", write_covering_bbox=True)


def _geo_metadata(path: str | os.PathLike[str], what: str) -> tuple[str, set[str]]:
    """(geometry column, bbox covering columns) of a GeoParquet file; InputError if it is not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except FileNotFoundError as exc:
        raise InputError(f"{what} file {path} does not exist: was its shard completed?") from exc
    except pa.ArrowInvalid as exc:
        raise InputError(f"{what} file {path} is not Parquet ({exc}): rewrite it") from exc
    if b"geo" not in meta:
        raise InputError(f"{what} file {path} has no GeoParquet 'geo' metadata: rewrite it")
    geo = json.loads(meta[b"geo"])
    bbox = {field[0] for column in geo["columns"].values()
            for field in column.get("covering", {}).get("bbox", {}).values()}
    return geo["primary_column"], bbox


def read_points_geoparquet(
    path: str | os.PathLike[str], columns: Mapping[str, str], what: str
) -> pd.DataFrame:
    """The table of a file `write_points_geoparquet` wrote, without geometry and bbox columns."""
    import pyarrow.parquet as pq

    geometry, bbox = _geo_metadata(path, what)
    schema = pq.read_schema(path)
    table = pq.read_table(path, columns=[n for n in schema.names if n != geometry and n not in bbox])
    return coerce_table(table.to_pandas(), columns, what)


def read_geoparquet(path: str | os.PathLike[str], columns: Mapping[str, str], what: str) -> gpd.GeoDataFrame:
    """The table of a file `write_geoparquet` wrote: schema columns coerced, geometry kept."""
    import geopandas as gpd

    _, bbox = _geo_metadata(path, what)
    frame = gpd.read_parquet(path)
    frame = frame.drop(columns=[c for c in frame.columns if c in bbox])
    return gpd.GeoDataFrame(coerce_table(frame, columns, what), geometry=frame.geometry.name, crs=frame.crs)


def write_table_csv(path: str | os.PathLike[str], df: pd.DataFrame) -> None:
    """UTF-8 CSV with a header row; lon/lat are plain columns, no geometry."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")


def _column_values(series: pd.Series) -> list[Any]:
    """One column as JSON-native values: None where missing, floats as their shortest text.

    Vectorised: a national table has 10⁵ rows × 30 columns.
    """
    dtype = series.dtype
    numpy_dtype = isinstance(dtype, np.dtype)
    if dtype.kind == "f":
        if numpy_dtype and dtype == np.float32:
            # a float32's str() is its shortest round-trip text (0.87, not 0.8700000047683716);
            # numpy formats and parses the whole column at once
            values = series.to_numpy().astype(str).astype(np.float64)
        else:
            values = series.to_numpy(np.float64, na_value=np.nan)
        out = values.tolist()
        for k in np.flatnonzero(~np.isfinite(values)):
            out[k] = None
        return out
    if numpy_dtype and dtype.kind in "iub":
        return series.to_numpy().tolist()
    if not numpy_dtype:  # Arrow-backed text, nullable ints and booleans: Arrow makes the list
        import pyarrow as pa

        return pa.array(series, from_pandas=True).to_pylist()
    out = series.to_numpy(dtype=object, na_value=None).tolist()
    for k, value in enumerate(out):
        if isinstance(value, np.generic):
            out[k] = value.item()
        elif isinstance(value, float) and not math.isfinite(value):
            out[k] = None
    return out


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of `df` as dicts of JSON-native values (for GeoJSON properties and HTML)."""
    columns = {name: _column_values(df[name]) for name in df.columns}
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def display_text(value: Any) -> str:
    """A summary value as text for people: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
