"""Polygon coordinates as text, for 10⁵ footprints at once (KML and the map's GeoJSON).

Encoding one geometry at a time (shapely.to_geojson then json, or a loop over shapely
objects) took most of the national map's and KML's time. Here the rings of every polygon
are taken apart with one shapely call each, every coordinate is written as Python writes
a float (`repr`, the shortest text that reads back to the same number, which is what
`json.dumps` writes) by Arrow's compute functions in C, and rings, parts and geometries
are wrapped in each format's markup (`KML`, `GEOJSON`) by Arrow's list joins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Markup:
    """How `polygon_texts` writes a (multi)polygon: each piece's opening and closing text.

    A coordinate is `point[0] x point[1] y point[2]`, a ring's coordinates are joined by
    `separator` between `exterior` (or `hole`) texts, a part's rings by `ring_separator`
    between `part` texts, and a geometry's parts by `part_separator` between `polygon` (a
    Polygon) or `multipolygon` texts."""

    point: tuple[str, str, str]
    separator: str
    exterior: tuple[str, str]
    hole: tuple[str, str]
    ring_separator: str
    part: tuple[str, str]
    part_separator: str
    polygon: tuple[str, str]
    multipolygon: tuple[str, str]


#: KML: `<Polygon>` elements one after the other (the caller wraps them)
KML = Markup(
    point=("", ",", ""), separator=" ",
    exterior=("<outerBoundaryIs><LinearRing><coordinates>", "</coordinates></LinearRing></outerBoundaryIs>"),
    hole=("<innerBoundaryIs><LinearRing><coordinates>", "</coordinates></LinearRing></innerBoundaryIs>"),
    ring_separator="", part=("<Polygon>", "</Polygon>"), part_separator="", polygon=("", ""), multipolygon=("", ""),
)
#: GeoJSON as `json.dumps(..., sort_keys=True)` writes a geometry
GEOJSON = Markup(
    point=("[", ", ", "]"), separator=", ", exterior=("[", "]"), hole=("[", "]"), ring_separator=", ",
    part=("[", "]"), part_separator=", ",
    polygon=('{"coordinates": ', ', "type": "Polygon"}'),
    multipolygon=('{"coordinates": [', '], "type": "MultiPolygon"}'),
)


def float_texts(values: np.ndarray) -> Any:
    """Each float64 as Python writes it (`repr`), as a pyarrow large_string array.

    Arrow formats a double with the same shortest round-trip digits as `repr`, in C; it
    differs only for whole numbers (`-50` for `-50.0`) and in where it switches to an
    exponent (`0.00001` for `1e-05`), so those few values are written by `repr`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = np.asarray(values, dtype=np.float64)
    text = pa.array(values).cast(pa.large_string())
    with np.errstate(invalid="ignore"):
        odd = (values == np.trunc(values)) | (np.abs(values) < 1e-4) | ~np.isfinite(values)
    if odd.any():
        text = pc.replace_with_mask(text, pa.array(odd),
                                    pa.array([repr(v) for v in values[odd].tolist()], pa.large_string()))
    return text


def polygon_texts(geoms: Sequence[Any] | np.ndarray, markup: Markup) -> list[str | None]:
    """Each (multi)polygon written as `markup` says; None where missing or empty.

    Rings, parts and geometries are assembled by Arrow's list joins, not one Python string
    per part (10⁵ footprints)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    # an empty polygon comes back as one empty part; it has no ring to write
    real = ~shapely.is_empty(parts)
    parts, part_of = parts[real], part_of[real]
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    before, between, after = markup.point
    pairs = pc.binary_join_element_wise(_text(before), float_texts(coords[:, 0]), _text(between),
                                        float_texts(coords[:, 1]), _text(after), _text(""))
    ring_text = _joined(pairs, _offsets(coord_of, len(rings)), markup.separator)
    is_hole = np.r_[False, ring_of[1:] == ring_of[:-1]] if len(ring_of) else np.zeros(0, bool)
    ring_text = _wrapped(ring_text, is_hole, markup.hole, markup.exterior)
    part_text = _wrapped(_joined(ring_text, _offsets(ring_of, len(parts)), markup.ring_separator),
                         None, markup.part, markup.part)
    multi = shapely.get_type_id(geoms) == shapely.GeometryType.MULTIPOLYGON
    geom_text = _wrapped(_joined(part_text, _offsets(part_of, len(geoms)), markup.part_separator),
                         multi, markup.multipolygon, markup.polygon)
    has_parts = np.bincount(part_of, minlength=len(geoms)) > 0
    return pc.if_else(pa.array(has_parts), geom_text, pa.scalar(None, pa.large_string())).to_pylist()


def _offsets(owner: np.ndarray, n: int) -> np.ndarray:
    """List offsets of items grouped by `owner` (ascending, 0 ≤ owner < n)."""
    return np.r_[0, np.cumsum(np.bincount(owner, minlength=n))].astype(np.int64)


def _joined(items: Any, offsets: np.ndarray, separator: str) -> Any:
    """Each group's items joined by `separator` (an empty group gives '')."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.binary_join(pa.LargeListArray.from_arrays(pa.array(offsets), items), _text(separator))


def _wrapped(texts: Any, choose: np.ndarray | None, when: tuple[str, str], otherwise: tuple[str, str]) -> Any:
    """`open + text + close`, from `when` where `choose` is true, else from `otherwise`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if choose is None:
        return pc.binary_join_element_wise(_text(when[0]), texts, _text(when[1]), _text(""))
    mask = pa.array(choose, pa.bool_())
    opening, closing = (pc.if_else(mask, _text(a), _text(b)) for a, b in zip(when, otherwise, strict=True))
    return pc.binary_join_element_wise(opening, texts, closing, _text(""))


def _text(value: str) -> Any:
    """A large-string scalar: Arrow joins texts of one string type (ours are large, as a
    national KML is more than 2 GiB's worth of offsets away from being safe in int32)."""
    import pyarrow as pa

    return pa.scalar(value, pa.large_string())
