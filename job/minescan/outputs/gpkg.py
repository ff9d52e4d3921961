"""`minescan.gpkg`: one GeoPackage any GDAL opens (Debian's 3.6 has no Parquet driver).

Layers: `sites` (footprint polygons, every attribute), `detections` (points),
`register_matched` and `register_not_detected` (register entries, when a register was
given), `protected_areas` (when given) and `scenes` (scene footprints, committed or not).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._atomic import atomic_path
from ._site_view import area_ha, footprints, text_list
from .facts import RunFacts

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
    import pyarrow as pa


def write_geopackage(
    path: str | os.PathLike[str],
    sites: pd.DataFrame,
    detections: pd.DataFrame,
    facts: RunFacts,
    *,
    register: pd.DataFrame | None = None,
    protected: gpd.GeoDataFrame | None = None,
    changes: gpd.GeoDataFrame | None = None,
) -> list[str]:
    """Write the GeoPackage at local `path` atomically; returns its layer names. `changes`
    (the change table against a previous run) becomes a layer of footprints."""
    import geopandas as gpd
    import pyarrow as pa
    import pyogrio
    import shapely

    layers: dict[str, gpd.GeoDataFrame | pa.Table] = {}
    site_table = _plain(sites.drop(columns=["geometry"], errors="ignore"))
    site_table["area_ha"] = area_ha(site_table)
    layers["sites"] = gpd.GeoDataFrame(site_table, geometry=footprints(sites).to_numpy(), crs="EPSG:4326")
    layers["detections"] = _point_table(detections)
    if register is not None:
        matched = _matched(register)
        layers["register_matched"] = _points(register[matched])
        layers["register_not_detected"] = _points(register[~matched])
    if protected is not None:
        layers["protected_areas"] = gpd.GeoDataFrame(
            _plain(protected.drop(columns=[protected.geometry.name])),
            geometry=protected.to_crs("EPSG:4326").geometry.to_numpy(), crs="EPSG:4326",
        )
    if changes is not None:
        layers["changes"] = gpd.GeoDataFrame(
            _plain(changes.drop(columns=[changes.geometry.name])),
            geometry=changes.geometry.to_numpy(), crs="EPSG:4326",
        )
    scenes = [scene for scene in facts.scenes if scene.bounds is not None]
    layers["scenes"] = gpd.GeoDataFrame(
        {"scene_id": [s.scene_id for s in scenes], "committed": [s.committed for s in scenes]},
        geometry=[shapely.box(*s.bounds) for s in scenes], crs="EPSG:4326",
    )
    with atomic_path(path) as tmp:
        for name, layer in layers.items():
            # footprints mix Polygon and MultiPolygon; GeoPackage wants one type per layer
            # GeoPackage 1.2: older GDAL builds (Debian 12's 3.6) warn that 1.4 files
            # "may only be partially supported"; nothing here needs 1.3/1.4 features.
            # Arrow: GDAL takes whole columns (2 M detections: 7 s instead of 16 s), and a
            # missing text is NULL (the feature-by-feature path wrote pandas' "<NA>")
            options = {"layer": name, "driver": "GPKG", "append": tmp.exists(),
                       "dataset_options": None if tmp.exists() else {"VERSION": "1.2"}}
            if isinstance(layer, pa.Table):
                pyogrio.write_arrow(layer, tmp, geometry_name="geometry", geometry_type="Point",
                                    crs="EPSG:4326", **options)
            else:
                pyogrio.write_dataframe(layer, tmp, use_arrow=True,
                                        promote_to_multi=name in ("sites", "protected_areas", "scenes", "changes"), **options)
    return list(layers)


def _matched(register: pd.DataFrame) -> pd.Series:
    """Register entries some site matched: a `matched` flag, else a non-empty `site_id`."""
    if "matched" in register:
        return register["matched"].fillna(False).astype(bool)
    if "site_id" in register:
        return register["site_id"].notna() & (register["site_id"].astype(str) != "")
    import pandas as pd

    return pd.Series(False, index=register.index)


def _points(table: pd.DataFrame) -> gpd.GeoDataFrame:
    import geopandas as gpd

    plain = _plain(table.drop(columns=["geometry", "bbox"], errors="ignore"))
    return gpd.GeoDataFrame(plain, geometry=gpd.points_from_xy(plain["lon"], plain["lat"]), crs="EPSG:4326")


#: a little-endian WKB 2-D point: byte order 1, geometry type 1, x, y
_WKB_POINT = [("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")]


def _point_table(table: pd.DataFrame) -> pa.Table:
    """A points layer as Arrow for `pyogrio.write_arrow`, its WKB points packed from lon/lat
    by numpy: for 2·10⁶ detections, building shapely points and letting
    `write_dataframe` inspect them took 3 s. For tables of a fixed schema (the detections),
    whose columns Arrow takes as they are."""
    import numpy as np
    import pyarrow as pa

    plain = _plain(table.drop(columns=["geometry", "bbox"], errors="ignore"))
    wkb = np.empty(len(plain), dtype=np.dtype(_WKB_POINT))
    wkb["order"], wkb["type"] = 1, 1
    wkb["x"], wkb["y"] = plain["lon"].to_numpy(np.float64), plain["lat"].to_numpy(np.float64)
    size = wkb.dtype.itemsize
    offsets = np.arange(0, size * (len(wkb) + 1), size, dtype=np.int64)
    points = pa.Array.from_buffers(pa.large_binary(), len(wkb), [None, pa.py_buffer(offsets), pa.py_buffer(wkb.tobytes())])
    return pa.Table.from_pandas(plain, preserve_index=False).append_column("geometry", points)


def _plain(table: pd.DataFrame) -> pd.DataFrame:
    """Columns GeoPackage can store: list-like cells joined as text."""
    out = table.reset_index(drop=True).copy()
    for column in out.columns:
        if out[column].dtype == object and out[column].map(lambda v: isinstance(v, (list, tuple, set))).any():
            out[column] = out[column].map(text_list)
    return out
