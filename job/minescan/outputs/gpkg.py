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


def write_geopackage(
    path: str | os.PathLike[str],
    sites: pd.DataFrame,
    detections: pd.DataFrame,
    facts: RunFacts,
    *,
    register: pd.DataFrame | None = None,
    protected: gpd.GeoDataFrame | None = None,
) -> list[str]:
    """Write the GeoPackage at local `path` atomically; returns its layer names."""
    import geopandas as gpd
    import pyogrio
    import shapely

    layers: dict[str, gpd.GeoDataFrame] = {}
    site_table = _plain(sites.drop(columns=["geometry"], errors="ignore"))
    site_table["area_ha"] = area_ha(site_table)
    layers["sites"] = gpd.GeoDataFrame(site_table, geometry=footprints(sites).to_numpy(), crs="EPSG:4326")
    layers["detections"] = _points(detections)
    if register is not None:
        matched = _matched(register)
        layers["register_matched"] = _points(register[matched])
        layers["register_not_detected"] = _points(register[~matched])
    if protected is not None:
        layers["protected_areas"] = gpd.GeoDataFrame(
            _plain(protected.drop(columns=[protected.geometry.name])),
            geometry=protected.to_crs("EPSG:4326").geometry.to_numpy(), crs="EPSG:4326",
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
            # "may only be partially supported"; nothing here needs 1.3/1.4 features
            pyogrio.write_dataframe(
                layer, tmp, layer=name, driver="GPKG", append=tmp.exists(),
                promote_to_multi=name in ("sites", "protected_areas", "scenes"),
                dataset_options=None if tmp.exists() else {"VERSION": "1.2"},
            )
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


def _plain(table: pd.DataFrame) -> pd.DataFrame:
    """Columns GeoPackage can store: list-like cells joined as text."""
    out = table.reset_index(drop=True).copy()
    for column in out.columns:
        if out[column].dtype == object and out[column].map(lambda v: isinstance(v, (list, tuple, set))).any():
            out[column] = out[column].map(text_list)
    return out
