"""Polygon coordinates as text, for 10⁵ footprints at once (KML and the map's GeoJSON).

Encoding one geometry at a time (shapely.to_geojson then json, or a loop over shapely
objects) took most of the national map's and KML's time. Here the rings of every polygon
are taken apart with one shapely call each, every coordinate is written as Python writes
a float (`repr`, the shortest text that reads back to the same number, which is what
`json.dumps` writes) by Arrow's compute functions in C, and each writer assembles its own
markup from the rings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PolygonRings:
    """The rings of n (multi)polygons: which geometry each polygon part belongs to, and
    each part's rings (exterior first, then holes) as coordinate text."""

    #: per part, the index of the geometry it belongs to (ascending)
    part_of: np.ndarray
    #: per part, the index of its first ring in `rings`; one more entry closes the last part
    first_ring: np.ndarray
    #: per ring, its coordinates written with the caller's point format and separator
    rings: list[str]

    def part_rings(self, part: int) -> list[str]:
        """The ring texts of one part, exterior first."""
        return self.rings[self.first_ring[part]:self.first_ring[part + 1]]


def float_texts(values: np.ndarray) -> Any:
    """Each float64 as Python writes it (`repr`), as a pyarrow string array.

    Arrow formats a double with the same shortest round-trip digits as `repr`, in C; it
    differs only for whole numbers (`-50` for `-50.0`) and in where it switches to an
    exponent (`0.00001` for `1e-05`), so those few values are written by `repr`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = np.asarray(values, dtype=np.float64)
    text = pa.array(values).cast(pa.string())
    with np.errstate(invalid="ignore"):
        odd = (values == np.trunc(values)) | (np.abs(values) < 1e-4) | ~np.isfinite(values)
    if odd.any():
        text = pc.replace_with_mask(text, pa.array(odd), pa.array([repr(v) for v in values[odd].tolist()]))
    return text


def polygon_rings(geoms: Sequence[Any] | np.ndarray, point: tuple[str, str, str], separator: str) -> PolygonRings:
    """Take (multi)polygons apart: a coordinate is written `point[0] x point[1] y point[2]`
    (e.g. `("", ",", "")` for KML), a ring's coordinates joined by `separator`. Missing
    and empty geometries have no parts."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    # an empty polygon comes back as one empty part; it has no ring to write
    real = ~shapely.is_empty(parts)
    parts, part_of = parts[real], part_of[real]
    holes_per_part = shapely.get_num_interior_rings(parts)
    coords, coord_of = shapely.get_coordinates(shapely.get_rings(parts), return_index=True)
    before, between, after = point
    pairs = pc.binary_join_element_wise(before, float_texts(coords[:, 0]), between, float_texts(coords[:, 1]), after, "")
    starts = np.r_[0, np.flatnonzero(np.diff(coord_of)) + 1, len(coords)].astype(np.int64)
    rings = pc.binary_join(pa.LargeListArray.from_arrays(pa.array(starts), pairs), separator).to_pylist()
    return PolygonRings(part_of=part_of, first_ring=np.r_[0, np.cumsum(holes_per_part + 1)], rings=rings)


def geojson_polygons(geoms: Sequence[Any] | np.ndarray) -> list[str | None]:
    """Each (multi)polygon's GeoJSON geometry as `json.dumps(..., sort_keys=True)` writes it
    (`{"coordinates": ..., "type": "Polygon"}`), None where missing or empty."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    found = polygon_rings(geoms, ("[", ", ", "]"), ", ")
    parts: list[list[str]] = [[] for _ in range(len(geoms))]
    for p, owner in enumerate(found.part_of.tolist()):
        parts[owner].append("[" + ", ".join(f"[{ring}]" for ring in found.part_rings(p)) + "]")
    multi = (shapely.get_type_id(geoms) == shapely.GeometryType.MULTIPOLYGON).tolist()
    out: list[str | None] = []
    for polygons, is_multi in zip(parts, multi, strict=True):
        if not polygons:
            out.append(None)
        elif is_multi:
            out.append(f'{{"coordinates": [{", ".join(polygons)}], "type": "MultiPolygon"}}')
        else:
            out.append(f'{{"coordinates": {polygons[0]}, "type": "Polygon"}}')
    return out
