"""`map.html`: one self-contained interactive map (Leaflet, inlined), usable with no network.

Layers: site footprints (fill by impact class, magenta outline when no register lists the
site, dashed when it lies in protected or indigenous land), site markers clustered at low
zoom, register entries, protected areas, scene footprints (committed and missing), the
p(mine) mosaic as an image overlay, and country outlines shipped with the package as the
offline reference; an OpenStreetMap tile layer can be switched on by a user who is online.

Large runs: above `CANVAS_ABOVE` sites, features are drawn on one canvas instead of one
SVG element each, footprints are simplified to about 20 m and drawn only from
`FOOTPRINT_MIN_ZOOM` on, and site markers start on and clustered, so tens of thousands of
sites stay usable (figures in docs/BENCHMARKS.md).
"""

from __future__ import annotations

import base64
import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..models.networks import IMPACT_CLASSES
from ._kml import UNREGISTERED_RGB
from ._overlay import Overlay, ramp_css
from ._rings import GEOJSON, polygon_texts
from ._site_view import area_ha, footprints, has_footprints, known_count, rank_sites
from ._tables import impact_hex, records, value_rows
from .facts import RunFacts

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

#: more sites than this: canvas renderer, simplified footprints, clustered markers on
CANVAS_ABOVE = 2000
#: in a large run, footprints are drawn from this zoom on (about 300 m per screen pixel),
#: where a footprint outgrows its marker; below it the clustered markers stand for them
FOOTPRINT_MIN_ZOOM = 9
#: footprint simplification for large runs, degrees (about 20 m)
SIMPLIFY_DEG = 0.0002
#: coordinate decimals in the page (1e-5° is about 1 m)
DECIMALS = 5


@cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("minescan.outputs", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def render(template: str, **context: Any) -> str:
    """Render a package template (HTML-escaped unless marked safe)."""
    return _environment().get_template(template).render(**context)


def vendored(name: str) -> str:
    """A vendored library file's text (see outputs/vendor/README.md)."""
    return (resources.files("minescan.outputs") / "vendor" / name).read_text(encoding="utf-8")


def boundaries() -> dict[str, Any]:
    """The country outlines shipped with the package (outputs/data/README.md)."""
    return json.loads((resources.files("minescan.outputs") / "data" / "boundaries.geojson").read_text("utf-8"))


#: outline colour of a changed site on the map (the footprint after; before, for a vanished one)
CHANGE_COLOURS = {"new": "#00a6d6", "grown": "#d95f02", "shrunk": "#1b9e77", "vanished": "#666666"}


def map_html(
    sites: pd.DataFrame,
    facts: RunFacts,
    *,
    overlay: Overlay | None = None,
    register: pd.DataFrame | None = None,
    protected: gpd.GeoDataFrame | None = None,
    changes: gpd.GeoDataFrame | None = None,
) -> str:
    """The whole page for a coerced sites table and the run's facts; `changes` (the change
    table against a previous run) adds a layer of the sites that changed."""
    large = len(sites) > CANVAS_ABOVE
    data = {
        "title": facts.display_title,
        "warnings": list(facts.warnings),
        "canvas": large,
        "cluster_on": large,
        "footprint_min_zoom": FOOTPRINT_MIN_ZOOM if large else 0,
        "impact": {cls: impact_hex(cls) for cls in IMPACT_CLASSES},
        "unregistered": "#{:02x}{:02x}{:02x}".format(*UNREGISTERED_RGB),
        "sites": _sites_layer(sites, simplify=large),
        "footprint_kind": "footprint" if has_footprints(sites) else "bounding box of the site's cells",
        "register": _points_layer(register),
        "protected": _areas_layer(protected),
        "changes": None if changes is None else _areas_layer(changes[changes["change"] != "unchanged"]),
        "change_colours": CHANGE_COLOURS,
        "scenes": _scenes_layer(facts),
        "boundaries": boundaries(),
        "overlay": None if overlay is None else {
            "url": "data:image/png;base64," + base64.b64encode(overlay.png).decode("ascii"),
            "bounds": [[overlay.south, overlay.west], [overlay.north, overlay.east]],
        },
    }
    return render(
        "map.html.j2",
        facts=facts,
        data=data,
        data_json=_data_json(data),
        counts=_counts(sites),
        ramp=ramp_css(),
        leaflet_js=vendored("leaflet.js"),
        leaflet_css=vendored("leaflet.css"),
        cluster_js=vendored("leaflet.markercluster.js"),
        cluster_css=vendored("MarkerCluster.css"),
        leaflet_licence=vendored("LICENSE-leaflet"),
        cluster_licence=vendored("LICENSE-leaflet.markercluster"),
        versions=json.loads(vendored("VERSIONS.json")),
    )


def _counts(sites: pd.DataFrame) -> dict[str, Any]:
    from ._site_view import flag

    return {
        "sites": len(sites),
        "by_impact": {cls: int((sites["impact_class"] == cls).sum()) for cls in IMPACT_CLASSES},
        "unregistered": known_count(~flag(sites, "registered")),
        "protected": known_count(flag(sites, "protected")),
    }


def _sites_layer(sites: pd.DataFrame, *, simplify: bool) -> dict[str, Any]:
    """Sites as columns + rows (every attribute, in ranking order) and rounded footprints."""
    import numpy as np
    import shapely

    ranked = rank_sites(sites)
    shapes = footprints(ranked)
    if simplify:
        shapes = shapes.simplify(SIMPLIFY_DEG, preserve_topology=True)
    # pointwise: rounding for display only, never a topology repair that could fail
    shapes = shapely.set_precision(shapes.to_numpy(), 10.0**-DECIMALS, mode="pointwise")
    table = ranked.drop(columns=["geometry"], errors="ignore")
    table["area_ha"] = area_ha(table).round(2)
    return {
        "columns": list(table.columns),
        "rows": value_rows(table),
        "geometry": _geometry(shapes),
        # the bounds of rounded coordinates: rounding again only cleans the last binary digit
        "bbox": np.round(shapely.bounds(shapes), DECIMALS).tolist(),
    }


class GeometryText(str):
    """A JSON array already encoded: `_data_json` writes it into the page verbatim."""


def _geometry(shapes: Any) -> GeometryText | list[dict[str, Any] | None]:
    """Each footprint's GeoJSON geometry (None where empty). Polygons, the national case,
    are encoded at once (`_rings.polygon_texts`, the same text json.dumps gives), not
    decoded and re-encoded one by one; points (a table without footprints) one by one."""
    import shapely

    kinds = set(shapely.get_type_id(shapes).tolist()) - {-1}
    if kinds <= {shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON}:
        texts = polygon_texts(shapes, GEOJSON)
        return GeometryText("[" + ", ".join("null" if t is None else t for t in texts) + "]")
    return [_geojson(shape) for shape in shapes]


def _data_json(data: dict[str, Any]) -> Any:
    """`data | tojson` as the template filter writes it (sorted keys, HTML-safe), with each
    `GeometryText` value spliced in as the JSON it already is."""
    import uuid

    from jinja2.utils import htmlsafe_json_dumps
    from markupsafe import Markup

    spliced: dict[str, str] = {}

    def stand_ins(value: Any) -> Any:
        if isinstance(value, GeometryText):
            # a token no site attribute can hold: it is made here, now
            token = f"minescan-geometry-{uuid.uuid4().hex}"
            spliced[json.dumps(token)] = value
            return token
        if isinstance(value, dict):
            return {key: stand_ins(item) for key, item in value.items()}
        return value

    text = str(htmlsafe_json_dumps(stand_ins(data), sort_keys=True))
    for token, value in spliced.items():
        # geometry text is numbers, brackets, commas and key names: nothing HTML-safe JSON escapes
        text = text.replace(token, value, 1)
    return Markup(text)


def _geojson(shape: Any) -> dict[str, Any] | None:
    import shapely

    return None if shape is None or shape.is_empty else json.loads(shapely.to_geojson(shape))


def _points_layer(table: pd.DataFrame | None) -> dict[str, Any] | None:
    if table is None:
        return None
    plain = table.drop(columns=["geometry"], errors="ignore")
    return {"columns": list(plain.columns), "rows": value_rows(plain)}


def _areas_layer(areas: gpd.GeoDataFrame | None) -> dict[str, Any] | None:
    if areas is None:
        return None
    import shapely

    simplified = areas.to_crs("EPSG:4326").geometry.simplify(SIMPLIFY_DEG * 5, preserve_topology=True)
    rounded = shapely.set_precision(simplified.to_numpy(), 10.0**-4, mode="pointwise")
    plain = areas.drop(columns=[areas.geometry.name])
    features = [
        {"type": "Feature", "properties": row, "geometry": _geojson(shape)}
        for row, shape in zip(records(plain), rounded, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def _scenes_layer(facts: RunFacts) -> dict[str, Any]:
    features = [
        {
            "type": "Feature",
            "properties": {"scene_id": scene.scene_id, "committed": scene.committed},
            "geometry": {"type": "Polygon", "coordinates": [_ring(scene.bounds)]},
        }
        for scene in facts.scenes
        if scene.bounds is not None
    ]
    return {"type": "FeatureCollection", "features": features}


def _ring(bounds: tuple[float, float, float, float]) -> list[list[float]]:
    west, south, east, north = (round(v, DECIMALS) for v in bounds)
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]
