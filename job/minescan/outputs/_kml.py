"""KML 2.2 for Google Earth (the paper's analysts reviewed candidates there).

The file validates against the OGC KML 2.2 schema: elements in the schema's order
(`name` and `description` before `Style`), ids that are XML names, and the table's columns
as a typed `Schema` whose `SchemaData` every Placemark carries, so GDAL reads numbers as
numbers. One Folder per impact class, always all three and in class order, so GDAL's KML
drivers (which read each Folder as a layer) see the same layers in every file.

The XML is written as text rather than through simplekml: its object model took 1 s of CPU
per 1,300 placemarks, most of a scene's write stage, and minutes for a national set of 10⁵
sites (docs/BENCHMARKS.md); the tests read every file back with GDAL, ElementTree and the
OGC schema.
"""

from __future__ import annotations

import html
import itertools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..models.networks import IMPACT_CLASSES
from ._atomic import atomic_path
from ._tables import IMPACT_RGB, records

if TYPE_CHECKING:
    import pandas as pd

KML_NS = "http://www.opengis.net/kml/2.2"
SCHEMA_ID = "attributes"
# A white disc takes the style colour exactly; the default yellow pushpin would tint it.
_ICON = "http://maps.google.com/mapfiles/kml/shapes/placemark_circle.png"
#: outline of a site that no register lists: magenta, where every impact colour differs
UNREGISTERED_RGB = (197, 27, 125)
#: pandas dtype kind → KML SimpleField type (OGC KML 2.2 §9.8)
_FIELD_TYPES = {"f": "double", "i": "int", "u": "uint", "b": "bool"}


def google_maps_url(lat: float, lon: float) -> str:
    """A Google Maps link that drops a pin at (lat, lon); opens on any device."""
    return f"https://www.google.com/maps/search/?api=1&query={lat:.6f},{lon:.6f}"


def number(value: float | None, digits: int = 3) -> str:
    """`value` with `digits` decimals; empty where the table has no value."""
    return "" if value is None else f"{value:.{digits}f}"


def description_html(fields: list[tuple[str, Any]], lat: float, lon: float) -> str:
    """The balloon text: a two-column table of `fields` and a Google Maps link."""
    rows = "".join(
        f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(str(value))}</td></tr>"
        for label, value in fields
    )
    link = html.escape(google_maps_url(lat, lon))
    return f"<table>{rows}</table><p><a href='{link}'>Open in Google Maps</a></p>"


def write_placemarks_kml(
    path: str | os.PathLike[str],
    df: pd.DataFrame,
    *,
    name: str,
    label: Callable[[dict[str, Any]], str],
    fields: Callable[[dict[str, Any]], list[tuple[str, Any]]] | None,
    shapes: Sequence[Any] | None = None,
    data_columns: Sequence[str] | None = None,
    rows: list[dict[str, Any]] | None = None,
    about: str = "",
    unregistered: Callable[[dict[str, Any]], bool] | None = None,
) -> None:
    """One styled Placemark per row of `df` (which has lon, lat, impact_class).

    `label(row)` names the Placemark, `fields(row)` lists the balloon's (label, value) pairs;
    rows are dicts of JSON-native values (`rows`, when the caller has them already). The
    typed ExtendedData carries `data_columns` (default: every column). Without `fields` the
    balloon is one template in the style that shows the ExtendedData (and a Google Maps
    link), which is what 10⁵ placemarks can afford. With `shapes` (lon/lat polygons, one per
    row) a Placemark holds its pin and its polygon in one MultiGeometry. `about` becomes the
    Document's description (the SYNTHETIC warning, when it applies); `unregistered(row)`
    picks the magenta-outlined style of a site no register lists. The same rows always give
    the same bytes.
    """
    rows = records(df) if rows is None else rows
    data_names = [str(c) for c in df.columns] if data_columns is None else [c for c in data_columns if c in df.columns]
    types = {column: _FIELD_TYPES.get(df[column].dtype.kind, "string") for column in data_names}
    balloon_columns = None if fields else data_names
    styles = "".join(
        _style(cls, registered=registered, balloon_columns=balloon_columns)
        for cls in IMPACT_CLASSES
        for registered in ((True, False) if unregistered is not None else (True,))
    )
    schema = (f'<Schema name="{SCHEMA_ID}" id="{SCHEMA_ID}">'
              + "".join(f'<SimpleField type="{kind}" name="{_xml(column)}"/>' for column, kind in types.items())
              + "</Schema>")
    heads = {column: f'<SimpleData name="{_xml(column)}">' for column in data_names}
    polygons = _polygon_texts(shapes) if shapes is not None else None
    by_class: dict[str, list[str]] = {cls: [] for cls in IMPACT_CLASSES}
    for k, row in enumerate(rows):
        cls = row["impact_class"]
        data = "".join(
            f"{heads[key]}{_value(value, types[key])}</SimpleData>"
            for key in data_names
            if (value := row[key]) is not None
        )
        point = f"<Point><coordinates>{row['lon']!r},{row['lat']!r}</coordinates></Point>"
        geometry = point if polygons is None else f"<MultiGeometry>{point}{polygons[k]}</MultiGeometry>"
        balloon = (description_html(fields(row), row["lat"], row["lon"]) if fields
                   else f"<a href='{_xml(google_maps_url(row['lat'], row['lon']))}'>Open in Google Maps</a>")
        flagged = unregistered is not None and unregistered(row)
        by_class[cls].append(
            f"<Placemark><name>{_xml(label(row))}</name><description>{_cdata(balloon)}</description>"
            f"<styleUrl>#{_style_id(cls, registered=not flagged)}</styleUrl>"
            f'<ExtendedData><SchemaData schemaUrl="#{SCHEMA_ID}">{data}</SchemaData></ExtendedData>'
            f"{geometry}</Placemark>\n"
        )
    folders = "".join(
        f"<Folder><name>{cls}</name>\n{''.join(by_class[cls])}</Folder>\n" for cls in IMPACT_CLASSES
    )
    description = f"<description>{_xml(about)}</description>" if about else ""
    with atomic_path(path) as tmp:
        tmp.write_text(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="{KML_NS}">'
            f"<Document><name>{_xml(name)}</name>{description}\n{styles}\n{schema}\n{folders}</Document></kml>\n",
            encoding="utf-8",
        )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _cdata(text: str) -> str:
    """HTML for a balloon, verbatim (a CDATA section cannot hold its own end marker)."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _value(value: Any, kml_type: str) -> str:
    """A SimpleData text GDAL parses as the field's type (booleans as 1/0)."""
    if kml_type == "bool":
        return "1" if value else "0"
    return _xml(value) if isinstance(value, str) else str(value)


def _kml_colour(rgb: tuple[int, int, int], alpha: int = 255) -> str:
    r, g, b = rgb
    return f"{alpha:02x}{b:02x}{g:02x}{r:02x}"  # KML is aabbggrr


def _style_id(impact_class: str, *, registered: bool) -> str:
    return f"impact-{impact_class}" + ("" if registered else "-unregistered")


def _style(impact_class: str, *, registered: bool, balloon_columns: Sequence[str] | None = None) -> str:
    rgb = IMPACT_RGB[impact_class]
    line = rgb if registered else UNREGISTERED_RGB
    # Google Earth fills $[schema/field] from each placemark's typed ExtendedData
    balloon = "" if balloon_columns is None else "<BalloonStyle><text>" + _cdata(
        "<b>$[name]</b><table>"
        + "".join(f"<tr><th align='left'>{html.escape(c)}</th><td>$[{SCHEMA_ID}/{c}]</td></tr>"
                  for c in balloon_columns)
        + "</table><p>$[description]</p>"
    ) + "</text></BalloonStyle>"
    # hundreds of labels: a small label keeps them from hiding the imagery
    return (
        f'<Style id="{_style_id(impact_class, registered=registered)}"><IconStyle><color>{_kml_colour(rgb)}</color>'
        f"<Icon><href>{_ICON}</href></Icon></IconStyle><LabelStyle><scale>0.7</scale></LabelStyle>"
        f"<LineStyle><color>{_kml_colour(line)}</color><width>{2 if registered else 4}</width></LineStyle>"
        f"<PolyStyle><color>{_kml_colour(rgb, 0x59)}</color></PolyStyle>{balloon}</Style>"
    )


def _polygon_texts(shapes: Sequence[Any]) -> list[str]:
    """KML <Polygon> elements of each (multi)polygon, coordinates formatted all at once."""
    import numpy as np
    import shapely

    geoms = np.asarray(shapes, dtype=object)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    holes_per_part = shapely.get_num_interior_rings(parts)
    rings = shapely.get_rings(parts)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    text = [f"{x!r},{y!r}" for x, y in coords.tolist()]
    bounds = np.r_[0, np.flatnonzero(np.diff(coord_of)) + 1, len(text)]
    ring_text = [" ".join(text[a:b]) for a, b in itertools.pairwise(bounds)]
    first_ring = np.r_[0, np.cumsum(holes_per_part + 1)]
    out = [""] * len(geoms)
    for p, owner in enumerate(part_of):
        a, b = first_ring[p], first_ring[p + 1]
        boundary = f"<outerBoundaryIs><LinearRing><coordinates>{ring_text[a]}</coordinates></LinearRing></outerBoundaryIs>"
        holes = "".join(f"<innerBoundaryIs><LinearRing><coordinates>{ring_text[h]}</coordinates></LinearRing>"
                        "</innerBoundaryIs>" for h in range(a + 1, b))
        out[owner] += f"<Polygon>{boundary}{holes}</Polygon>"
    return out
