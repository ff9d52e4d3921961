"""KML for Google Earth (the paper's analysts reviewed candidates there).

One Folder per impact class, always all three and in class order, so GDAL's KML drivers
(which read each Folder as a layer) see the same layers in every file. Each Placemark
carries its table row as ExtendedData, which GDAL reads back as attribute columns.

The XML is written as text with the standard library's escaping rather than through
simplekml: its object model took 1 s of CPU per 1,300 placemarks, most of a scene's write
stage (docs/BENCHMARKS.md); the tests read every file back with GDAL and ElementTree.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

from ..models.networks import IMPACT_CLASSES
from ._atomic import atomic_path
from ._tables import IMPACT_RGB, records

if TYPE_CHECKING:
    import pandas as pd

# A white disc takes the style colour exactly; the default yellow pushpin would tint it.
_ICON = "http://maps.google.com/mapfiles/kml/shapes/placemark_circle.png"


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
    fields: Callable[[dict[str, Any]], list[tuple[str, Any]]],
) -> None:
    """One styled point Placemark per row of `df` (which has lon, lat, impact_class).

    `label(row)` names the Placemark, `fields(row)` lists the balloon's (label, value) pairs;
    rows are dicts of JSON-native values. The same rows always give the same bytes.
    """
    folders: dict[str, list[str]] = {cls: [] for cls in IMPACT_CLASSES}
    for row in records(df):
        folders[row["impact_class"]].append(_placemark(row, label(row), fields(row)))
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">\n<Document>\n',
             f"<name>{escape(name)}</name>\n", *(_style(cls) for cls in IMPACT_CLASSES)]
    for cls, placemarks in folders.items():
        parts += [f"<Folder>\n<name>{cls}</name>\n", *placemarks, "</Folder>\n"]
    parts.append("</Document>\n</kml>\n")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(parts), encoding="utf-8")


def _placemark(row: dict[str, Any], name: str, fields: list[tuple[str, Any]]) -> str:
    data = "".join(
        f"<Data name={quoteattr(str(key))}><value>{escape('' if value is None else str(value))}</value></Data>"
        for key, value in row.items()
    )
    description = escape(description_html(fields, row["lat"], row["lon"]))
    return (
        f"<Placemark>\n<name>{escape(name)}</name>\n<description>{description}</description>\n"
        f"<styleUrl>#{row['impact_class']}</styleUrl>\n<ExtendedData>{data}</ExtendedData>\n"
        f"<Point><coordinates>{float(row['lon'])!r},{float(row['lat'])!r},0</coordinates></Point>\n</Placemark>\n"
    )


def _style(impact_class: str) -> str:
    r, g, b = IMPACT_RGB[impact_class]
    # KML colours are aabbggrr; small labels, or hundreds of them hide the imagery
    return (
        f'<Style id="{impact_class}"><IconStyle><color>ff{b:02x}{g:02x}{r:02x}</color>'
        f"<Icon><href>{_ICON}</href></Icon></IconStyle><LabelStyle><scale>0.7</scale></LabelStyle></Style>\n"
    )
