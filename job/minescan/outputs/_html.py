"""`map.html`: one self-contained page for the analyst (opens offline, no scripts fetched).

An inline SVG plot of the sites by lon/lat, coloured by impact class, each dot linking to
its row in a sortable table; each row links to Google Maps for a look at recent imagery.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..models.networks import IMPACT_CLASSES
from ._kml import google_maps_url, number
from ._tables import SITE_COLUMNS, display_text, impact_hex, records

if TYPE_CHECKING:
    import pandas as pd

_WIDTH, _HEIGHT, _MARGIN = 960, 540, 40
#: table columns shown first (label, column, decimals or None for text); extras follow
_TABLE = (
    ("site", "site_id", None),
    ("impact", "impact_class", None),
    ("p(mine) max", "p_mine_max", 3),
    ("p(mine) mean", "p_mine_mean", 3),
    ("detections", "n_detections", 0),
    ("area ha", "area_ha", 1),
    ("registered", "registered", None),
    ("register", "register_name", None),
    ("protected land", "protected_names", None),
    ("p(high)", "p_high", 3),
    ("p(low)", "p_low", 3),
    ("p(no_ore)", "p_no_ore", 3),
    ("lon", "lon", 6),
    ("lat", "lat", 6),
    ("scenes", "scenes", None),
)
_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
svg { border: 1px solid #ccc; background: #fafafa; max-width: 100%; height: auto; }
table { border-collapse: collapse; margin-top: 1em; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left; }
th { cursor: pointer; background: #eee; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:target { background: #fff3b0; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 50%; margin: 0 4px 0 12px; }
"""
# Sorts by the clicked column; numbers sort by their data-v value, text by its content.
_SCRIPT = """
document.querySelectorAll("#sites th").forEach((th, i) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const asc = th.dataset.order !== "asc";
  th.dataset.order = asc ? "asc" : "desc";
  const key = (tr) => th.dataset.type === "num" ? parseFloat(tr.cells[i].dataset.v) : tr.cells[i].textContent;
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
  });
  rows.forEach((tr) => body.appendChild(tr));
}));
"""


def map_html(sites: pd.DataFrame, *, title: str, summary: dict[str, Any]) -> str:
    """The whole page for a coerced sites table."""
    rows = records(sites)
    counts = Counter(row["impact_class"] for row in rows)
    legend = "".join(
        f"<span class='swatch' style='background:{impact_hex(cls)}'></span>{cls}: {counts.get(cls, 0)}"
        for cls in IMPACT_CLASSES
    )
    facts = "".join(
        f"<li><b>{html.escape(str(key))}</b>: {html.escape(display_text(value))}</li>"
        for key, value in summary.items()
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>{len(rows)} sites.{legend}</p>\n"
        f"{_svg(rows)}\n<ul>{facts}</ul>\n{_table(sites, rows)}\n"
        f"<script>{_SCRIPT}</script>\n</body></html>\n"
    )


def _svg(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>No sites to plot.</p>"
    lons = [row["lon"] for row in rows]
    lats = [row["lat"] for row in rows]
    lon0, lon1 = _padded(min(lons), max(lons))
    lat0, lat1 = _padded(min(lats), max(lats))
    # Equirectangular at the mid latitude, so shapes look right near the equator and in the south.
    kx = math.cos(math.radians((lat0 + lat1) / 2))
    scale = min((_WIDTH - 2 * _MARGIN) / ((lon1 - lon0) * kx), (_HEIGHT - 2 * _MARGIN) / (lat1 - lat0))
    # centre the plot along the axis that has room to spare
    left = (_WIDTH - (lon1 - lon0) * kx * scale) / 2
    bottom = (_HEIGHT + (lat1 - lat0) * scale) / 2

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return left + (lon - lon0) * kx * scale, bottom - (lat - lat0) * scale

    parts = [_graticule(lon0, lon1, lat0, lat1, xy)]
    # strongest last, so it is drawn on top
    for index, row in sorted(enumerate(rows), key=lambda item: item[1]["p_mine_max"] or 0.0):
        x, y = xy(row["lon"], row["lat"])
        radius = 3 + 6 * (row["p_mine_max"] or 0.0)
        tip = f"{row['site_id']}: {row['impact_class']}, p(mine) max {number(row['p_mine_max'])}"
        parts.append(
            f"<a href='#site-{index}'><circle cx='{x:.1f}' cy='{y:.1f}' r='{radius:.1f}' "
            f"fill='{impact_hex(row['impact_class'])}' fill-opacity='0.85' stroke='#333' stroke-width='0.5'>"
            f"<title>{html.escape(tip)}</title></circle></a>"
        )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {_WIDTH} {_HEIGHT}' "
        f"width='{_WIDTH}' height='{_HEIGHT}' role='img' aria-label='sites by longitude and latitude'>"
        + "".join(parts)
        + "</svg>"
    )


def _padded(low: float, high: float) -> tuple[float, float]:
    pad = max((high - low) * 0.05, 0.01)
    return low - pad, high + pad


def _graticule(lon0: float, lon1: float, lat0: float, lat1: float, xy: Any) -> str:
    step = _tick_step(max(lon1 - lon0, lat1 - lat0))
    lines = []
    for lon in _ticks(lon0, lon1, step):
        (x, top), (_, bottom) = xy(lon, lat1), xy(lon, lat0)
        lines.append(
            f"<line x1='{x:.1f}' y1='{top:.1f}' x2='{x:.1f}' y2='{bottom:.1f}' stroke='#ddd'/>"
            f"<text x='{x:.1f}' y='{bottom + 16:.1f}' font-size='11' text-anchor='middle'>{lon:g}°</text>"
        )
    for lat in _ticks(lat0, lat1, step):
        (left, y), (right, _) = xy(lon0, lat), xy(lon1, lat)
        lines.append(
            f"<line x1='{left:.1f}' y1='{y:.1f}' x2='{right:.1f}' y2='{y:.1f}' stroke='#ddd'/>"
            f"<text x='{left - 4:.1f}' y='{y + 4:.1f}' font-size='11' text-anchor='end'>{lat:g}°</text>"
        )
    return "".join(lines)


def _tick_step(span: float) -> float:
    """The smallest 1-2-5 step that puts at most 8 grid lines across `span` degrees."""
    for exponent in range(-3, 3):
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**exponent
            if span / step <= 8:
                return step
    return 100.0


def _ticks(low: float, high: float, step: float) -> list[float]:
    first = math.ceil(low / step)
    return [round(k * step, 6) for k in range(first, math.floor(high / step) + 1)]


def _table(sites: pd.DataFrame, rows: list[dict[str, Any]]) -> str:
    shown = _TABLE + tuple((name, name, None) for name in sites.columns if name not in SITE_COLUMNS)
    numeric = {name for name in sites.columns if sites[name].dtype.kind in "iuf"}
    head = "".join(
        f"<th data-type='{'num' if column in numeric else 'text'}'>{html.escape(label)}</th>"
        for label, column, _ in shown
    )
    body = []
    for index, row in enumerate(rows):
        cells = [_cell(row[column], column in numeric, digits) for _, column, digits in shown]
        link = html.escape(google_maps_url(row["lat"], row["lon"]))
        cells.append(f"<td><a href='{link}' target='_blank' rel='noopener'>Google Maps</a></td>")
        body.append(f"<tr id='site-{index}'>{''.join(cells)}</tr>")
    return (
        f"<table id='sites'><thead><tr>{head}<th>map</th></tr></thead>"
        f"<tbody>\n{chr(10).join(body)}\n</tbody></table>"
    )


def _cell(value: Any, is_number: bool, digits: int | None) -> str:
    if is_number:
        text = number(value, digits) if digits is not None and value is not None else _blank(value)
        raw = "NaN" if value is None else repr(value)
        return f"<td class='num' data-v='{raw}'>{text}</td>"
    return f"<td>{html.escape(_blank(value))}</td>"


def _blank(value: Any) -> str:
    return "" if value is None else str(value)
