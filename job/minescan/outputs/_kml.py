"""KML 2.2 for Google Earth (the paper's analysts reviewed candidates there).

The file validates against the OGC KML 2.2 schema: elements in the schema's order
(`name` and `description` before `Style`), ids that are XML names, and the table's columns
as a typed `Schema` whose `SchemaData` every Placemark carries, so GDAL reads numbers as
numbers. One Folder per impact class, always all three and in class order, so GDAL's KML
drivers (which read each Folder as a layer) see the same layers in every file.
"""

from __future__ import annotations

import html
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
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


def google_earth_url(lat: float, lon: float, range_m: float = 3000.0) -> str:
    """A Google Earth (web) link looking straight down on (lat, lon) from `range_m` metres."""
    return f"https://earth.google.com/web/@{lat:.6f},{lon:.6f},0a,{range_m:.0f}d,35y,0h,0t,0r"


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
    fields: Callable[[dict[str, Any]], list[tuple[str, Any]]],
    about: str = "",
    geometries: list[Any] | None = None,
    unregistered: Callable[[dict[str, Any]], bool] | None = None,
) -> None:
    """One styled Placemark per row of `df` (which has lon, lat, impact_class).

    `label(row)` names the Placemark, `fields(row)` lists the balloon's (label, value)
    pairs; rows are dicts of JSON-native values. `about` becomes the Document's
    description (say SYNTHETIC there when it applies). `geometries` (shapely, EPSG:4326,
    one per row) replace the lon/lat point; `unregistered(row)` picks the magenta-outlined
    style of a site no register lists.
    """
    ET.register_namespace("", KML_NS)
    root = ET.Element(_q("kml"))
    document = _sub(root, "Document")
    _sub(document, "name", name)
    if about:
        _sub(document, "description", about)
    for cls in IMPACT_CLASSES:
        _style(document, cls, registered=True)
        if unregistered is not None:
            _style(document, cls, registered=False)
    columns = [column for column in df.columns if column != "geometry"]
    types = _schema(document, df.loc[:, columns])
    folders = {}
    for cls in IMPACT_CLASSES:
        folders[cls] = _sub(document, "Folder")
        _sub(folders[cls], "name", cls)
    for index, row in enumerate(records(df.loc[:, columns])):
        placemark = _sub(folders[row["impact_class"]], "Placemark")
        _sub(placemark, "name", label(row))
        _sub(placemark, "description", description_html(fields(row), row["lat"], row["lon"]))
        flagged = unregistered is not None and unregistered(row)
        _sub(placemark, "styleUrl", f"#{_style_id(row['impact_class'], registered=not flagged)}")
        schema_data = _sub(_sub(placemark, "ExtendedData"), "SchemaData")
        schema_data.set("schemaUrl", f"#{SCHEMA_ID}")
        for column, value in row.items():
            if value is not None:
                _sub(schema_data, "SimpleData", _text(value, types[column])).set("name", column)
        _geometry(placemark, geometries[index] if geometries is not None else None, row)
    with atomic_path(path) as tmp:
        ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)


def _q(tag: str) -> str:
    return f"{{{KML_NS}}}{tag}"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, _q(tag))
    if text is not None:
        child.text = text
    return child


def _style_id(impact_class: str, *, registered: bool) -> str:
    return f"impact-{impact_class}" + ("" if registered else "-unregistered")


def _kml_colour(rgb: tuple[int, int, int], alpha: int = 255) -> str:
    r, g, b = rgb
    return f"{alpha:02x}{b:02x}{g:02x}{r:02x}"  # KML is aabbggrr


def _style(document: ET.Element, impact_class: str, *, registered: bool) -> None:
    style = _sub(document, "Style")
    style.set("id", _style_id(impact_class, registered=registered))
    icon_style = _sub(style, "IconStyle")
    _sub(icon_style, "color", _kml_colour(IMPACT_RGB[impact_class]))
    _sub(_sub(icon_style, "Icon"), "href", _ICON)
    # hundreds of labels: keep them from hiding the imagery
    _sub(_sub(style, "LabelStyle"), "scale", "0.7")
    line_style = _sub(style, "LineStyle")
    _sub(line_style, "color", _kml_colour((51, 51, 51) if registered else UNREGISTERED_RGB))
    _sub(line_style, "width", "1.5" if registered else "3")
    _sub(_sub(style, "PolyStyle"), "color", _kml_colour(IMPACT_RGB[impact_class], alpha=0x99))


def _schema(document: ET.Element, df: pd.DataFrame) -> dict[str, str]:
    """Declare every column with its type; returns {column: KML type}."""
    schema = _sub(document, "Schema")
    schema.set("name", SCHEMA_ID)
    schema.set("id", SCHEMA_ID)
    types = {}
    for column in df.columns:
        types[column] = _FIELD_TYPES.get(df[column].dtype.kind, "string")
        field = _sub(schema, "SimpleField")
        field.set("type", types[column])
        field.set("name", str(column))
    return types


def _text(value: Any, kml_type: str) -> str:
    if kml_type == "bool":
        return "1" if value else "0"
    return repr(value) if isinstance(value, float) else str(value)


def _geometry(placemark: ET.Element, geometry: Any, row: dict[str, Any]) -> None:
    if geometry is None or geometry.is_empty:
        _sub(_sub(placemark, "Point"), "coordinates", _coordinates([(row["lon"], row["lat"])]))
    elif geometry.geom_type == "Polygon":
        _polygon(placemark, geometry)
    elif geometry.geom_type == "MultiPolygon":
        multi = _sub(placemark, "MultiGeometry")
        for part in geometry.geoms:
            _polygon(multi, part)
    else:
        _sub(_sub(placemark, "Point"), "coordinates", _coordinates(geometry.centroid.coords))


def _polygon(parent: ET.Element, polygon: Any) -> None:
    element = _sub(parent, "Polygon")
    outer = _sub(_sub(element, "outerBoundaryIs"), "LinearRing")
    _sub(outer, "coordinates", _coordinates(polygon.exterior.coords))
    for ring in polygon.interiors:
        inner = _sub(_sub(element, "innerBoundaryIs"), "LinearRing")
        _sub(inner, "coordinates", _coordinates(ring.coords))


def _coordinates(points: Any) -> str:
    return " ".join(f"{float(x)!r},{float(y)!r}" for x, y, *_ in points)
