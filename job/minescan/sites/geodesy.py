"""Distances and areas on the WGS84 ellipsoid: what every site measurement is made of.

No mean latitude and no constant metres-per-degree anywhere (a national run spans 5° N to
33° S, where a degree of longitude shrinks by 16 %):

* linking compares straight 3-D chords between points on the ellipsoid (geocentric
  coordinates); at the 800 m linking distance a chord is shorter than the geodesic by
  under a micrometre, so "chord ≤ d" is "geodesic ≤ d";
* areas and perimeters come from `pyproj.Geod` (Karney's algorithms) ring by ring;
* the distance between a point and a footprint is the geodesic between the two nearest
  points. The nearest points are found in a plane scaled to the pair's own latitude (a few
  kilometres across, so the choice of nearest vertex or edge point is exact to well under
  0.1 %), then measured on the ellipsoid.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pyproj import Geod

#: metres per degree of latitude can be as small as this (the meridian at the equator)
_MIN_M_PER_DEG_LAT = 110_574.0
#: and a degree of longitude is at least this × cos(latitude) (the equatorial radius)
_MIN_M_PER_DEG_LON = 111_319.0


@functools.cache
def geod() -> Geod:
    """The WGS84 ellipsoid, as pyproj measures on it."""
    from pyproj import Geod

    return Geod(ellps="WGS84")


@functools.cache
def _to_geocentric():
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", "EPSG:4978", always_xy=True)


def geocentric(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(n, 3) Earth-centred x, y, z in metres of points on the WGS84 ellipsoid."""
    lon = np.asarray(lon, np.float64)
    lat = np.asarray(lat, np.float64)
    if len(lon) == 0:
        return np.zeros((0, 3))
    x, y, z = _to_geocentric().transform(lon, lat, np.zeros_like(lon))
    return np.column_stack([x, y, z])


def degrees_around(lat: np.ndarray, metres: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Δlon, Δlat) in degrees that surely reach `metres` from a point at `lat`.

    A safe over-estimate for box queries, never a measurement: the exact distance is
    computed afterwards.
    """
    lat = np.asarray(lat, np.float64)
    cos = np.maximum(np.cos(np.radians(np.abs(lat) + 0.5)), 1e-6)
    metres = np.broadcast_to(np.asarray(metres, np.float64) * 1.01 + 1.0, lat.shape)
    return metres / (_MIN_M_PER_DEG_LON * cos), metres / _MIN_M_PER_DEG_LAT


def area_perimeter(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ellipsoidal area (m²) and perimeter (m, every ring) of lon/lat (multi)polygons.

    Exteriors are oriented counter-clockwise and holes clockwise first, so Geod's signed
    ring areas add up to the area with the holes taken out.
    """
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    area = np.zeros(len(geoms))
    perimeter = np.zeros(len(geoms))
    if len(geoms) == 0:
        return area, perimeter
    oriented = shapely.orient_polygons(geoms, exterior_cw=False)
    parts, part_of = shapely.get_parts(oriented, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    if len(coords) == 0:
        return area, perimeter
    bounds = np.flatnonzero(np.diff(coord_of)) + 1
    owner = part_of[ring_of]
    g = geod()
    for k, ring in enumerate(np.split(coords, bounds)):
        a, p = g.polygon_area_perimeter(ring[:, 0], ring[:, 1])
        area[owner[k]] += a
        perimeter[owner[k]] += p
    return area, perimeter


def _local(geoms: np.ndarray, lon0: np.ndarray, lat0: np.ndarray) -> np.ndarray:
    """Each geometry in a plane centred on its own (lon0, lat0), x scaled by cos(lat0)."""
    import shapely

    coords, index = shapely.get_coordinates(geoms, return_index=True)
    scale = np.cos(np.radians(lat0))[index]
    local = np.column_stack([(coords[:, 0] - lon0[index]) * scale, coords[:, 1] - lat0[index]])
    return shapely.set_coordinates(np.array(geoms, dtype=object, copy=True), local)


def distance_m(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic distance (m) between the nearest points of a[i] and b[i]; 0 where they meet."""
    import shapely

    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    out = np.zeros(len(a))
    if len(a) == 0:
        return out
    apart = ~shapely.intersects(a, b)
    if not apart.any():
        return out
    a, b = a[apart], b[apart]
    centre = shapely.get_coordinates(shapely.point_on_surface(a))
    lon0, lat0 = centre[:, 0], centre[:, 1]
    line = shapely.shortest_line(_local(a, lon0, lat0), _local(b, lon0, lat0))
    ends = shapely.get_coordinates(line).reshape(-1, 2, 2)
    scale = np.cos(np.radians(lat0))
    lon = ends[:, :, 0] / scale[:, None] + lon0[:, None]
    lat = ends[:, :, 1] + lat0[:, None]
    _, _, dist = geod().inv(lon[:, 0], lat[:, 0], lon[:, 1], lat[:, 1])
    out[apart] = dist
    return out
