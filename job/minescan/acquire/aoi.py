"""The area of interest: read a polygon file, check it, return one lon/lat geometry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

_POLYGONAL = ("Polygon", "MultiPolygon")


def read_aoi(path: str | Path, where: str | None = None) -> BaseGeometry:
    """Union of the polygons in a vector file (GeoJSON, shapefile, GeoPackage...) in lon/lat.

    `where` picks features by an attribute, `column=value` (e.g. `gid_0=BRA`).
    """
    import geopandas as gpd

    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises its own DataSourceError, OSError, ...
        raise InputError(f"cannot read AOI {path}: {exc}") from None
    if where:
        column, _, value = where.partition("=")
        if column not in frame.columns:
            raise InputError(f"AOI {path} has no column {column!r}; columns are {list(frame.columns)}")
        frame = frame[frame[column].astype(str) == value]
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    return check_aoi(frame.geometry.union_all() if len(frame) else None, str(path))


def check_aoi(geom: BaseGeometry | None, name: str = "AOI") -> BaseGeometry:
    """Return `geom` made valid, or raise InputError when it is empty, not polygonal, or not
    in lon/lat degrees."""
    from shapely import make_valid

    if geom is None or geom.is_empty:
        raise InputError(f"{name} is empty: give a file with at least one polygon")
    if geom.geom_type not in _POLYGONAL:
        raise InputError(f"{name} is a {geom.geom_type}, not a polygon: give the area as (multi)polygons")
    west, south, east, north = geom.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InputError(
            f"{name} bounds {geom.bounds} are outside lon −180..180 / lat −90..90: "
            "is it in a projected CRS without a .prj or crs member?"
        )
    if not geom.is_valid:
        geom = make_valid(geom)
        polys = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type in _POLYGONAL]
        from shapely.ops import unary_union

        geom = unary_union(polys)
    if geom.area == 0:
        raise InputError(f"{name} has zero area")
    return geom
