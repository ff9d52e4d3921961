"""KML for Google Earth (the paper's analysts reviewed candidates there), via simplekml.

One Folder per impact class, always all three and in class order, so GDAL's KML drivers
(which read each Folder as a layer) see the same layers in every file. Each Placemark
carries its table row as ExtendedData, which GDAL reads back as attribute columns.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

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
    rows are dicts of JSON-native values.
    """
    import simplekml
    from simplekml.base import Kmlable

    # simplekml numbers element ids from a process-wide counter; restart it so the same
    # rows always give the same bytes (a retried shard must rewrite identical files)
    Kmlable._globalid = 0
    kml = simplekml.Kml(name=name)
    folders = {cls: kml.newfolder(name=cls) for cls in IMPACT_CLASSES}
    styles = {cls: _style(simplekml, cls) for cls in IMPACT_CLASSES}
    for row in records(df):
        cls = row["impact_class"]
        point = folders[cls].newpoint(name=label(row), coords=[(row["lon"], row["lat"])])
        point.description = description_html(fields(row), row["lat"], row["lon"])
        point.style = styles[cls]
        for key, value in row.items():
            # simplekml escapes name and description but writes Data verbatim
            text = "" if value is None else str(value)
            point.extendeddata.newdata(name=escape(str(key), {'"': "&quot;"}), value=escape(text))
    with atomic_path(path) as tmp:
        kml.save(str(tmp))


def _style(simplekml: Any, impact_class: str) -> Any:
    style = simplekml.Style()
    style.iconstyle.color = simplekml.Color.rgb(*IMPACT_RGB[impact_class])
    style.iconstyle.icon.href = _ICON
    style.labelstyle.scale = 0.7  # hundreds of labels: keep them from hiding the imagery
    return style
