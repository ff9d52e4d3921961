"""A STAC catalog of the run's products (pystac), so a catalog or a GIS can index them.

`national/stac/collection.json`: one Collection for the run; one Item per committed scene
(its p(mine) COG and zarr, its detections) and one `national` Item (sites in every format,
the mosaic COG and VRT, the map and the report). Hrefs are relative, so the catalog stays
valid wherever the run directory (or bucket prefix) is copied.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .facts import RunFacts
from .rasters import Mosaic

STAC_DIR = "stac"
#: media types of the files a run holds, by suffix
_MEDIA = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".vrt": "application/xml",
    ".zarr": "application/vnd+zarr",
    ".parquet": "application/vnd.apache.parquet",
    ".gpkg": "application/geopackage+sqlite3",
    ".geojson": "application/geo+json",
    ".kml": "application/vnd.google-earth.kml+xml",
    ".csv": "text/csv",
    ".html": "text/html",
    ".pdf": "application/pdf",
    ".md": "text/markdown",
}


def write_stac(
    national_dir: str | os.PathLike[str],
    facts: RunFacts,
    files: dict[str, Path],
    *,
    mosaic: Mosaic | None = None,
    scene_files: tuple[str, ...] = ("probability.tif", "probability.zarr", "detections.parquet"),
) -> Path:
    """Write `<national_dir>/stac/` (collection + items); returns the collection's path.

    `files` are the national products (key → local path inside `national_dir`); scene
    assets are named relative to the run root, where `facts.scenes[*].data` points.
    """
    import pystac

    root = Path(national_dir) / STAC_DIR
    when = datetime.fromisoformat(facts.created).astimezone(timezone.utc)
    boxes = [scene.bounds for scene in facts.scenes if scene.bounds is not None]
    bbox = _union(boxes) if boxes else [-180.0, -90.0, 180.0, 90.0]
    collection = pystac.Collection(
        id=_stac_id(facts.run or "minescan-run"),
        title=facts.display_title,
        description=_description(facts),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([[when, when]])),
        license="other",
        keywords=["mining", "tailings dams", "Sentinel-2", "deep learning"] + (["SYNTHETIC"] if facts.synthetic else []),
        extra_fields={"minescan:synthetic": facts.synthetic},
    )
    national = pystac.Item(
        id="national", geometry=_polygon(bbox), bbox=bbox, datetime=when,
        properties={"title": "national sites and p(mine) mosaic", "minescan:synthetic": facts.synthetic},
    )
    for key, path in sorted(files.items()):
        national.add_asset(key, _asset(f"../../{Path(path).relative_to(national_dir).as_posix()}", key))
    if mosaic is not None:
        national.add_asset("mosaic_cog", _asset(f"../../{mosaic.cog.name}", "p(mine) mosaic", raster=True))
        national.add_asset("mosaic_vrt", _asset(f"../../{mosaic.vrt.name}", "p(mine) mosaic over the scene COGs"))
    collection.add_item(national)
    for scene in facts.scenes:
        if not scene.committed or scene.bounds is None or scene.data is None:
            continue
        item = pystac.Item(
            id=_stac_id(scene.scene_id), geometry=_polygon(list(scene.bounds)), bbox=list(scene.bounds),
            datetime=when, properties={"title": f"scene {scene.scene_id}", "minescan:synthetic": facts.synthetic},
        )
        for name in scene_files:
            # items sit at stac/<id>/<id>.json: three levels below the run root
            item.add_asset(name.replace(".", "_"), _asset(f"../../../{scene.data}/{name}", name, raster=name.endswith(".tif")))
        collection.add_item(item)
    collection.normalize_hrefs(str(root))
    collection.make_all_asset_hrefs_relative()
    collection.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "collection.json"


def _asset(href: str, title: str, *, raster: bool = False) -> Any:
    import pystac

    suffix = Path(href).suffix
    roles = ["data"] if raster or suffix in (".parquet", ".gpkg", ".zarr", ".geojson") else ["metadata" if suffix == ".md" else "overview"]
    return pystac.Asset(href=href, title=title, media_type=_MEDIA.get(suffix), roles=roles)


def _description(facts: RunFacts) -> str:
    lines = [f"minescan run {facts.run}: surface mines and tailings dams detected in {facts.imagery}."]
    if facts.period:
        lines.append(f"Imagery period: {facts.period}.")
    lines += list(facts.warnings)
    return " ".join(lines)


def _union(boxes: list[tuple[float, float, float, float]]) -> list[float]:
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def _polygon(bbox: list[float]) -> dict[str, Any]:
    west, south, east, north = bbox
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]]}


def _stac_id(text: str) -> str:
    """An id safe in a file name: the run's last path part, other characters as '-'."""
    tail = text.rstrip("/").rsplit("/", 1)[-1] or "run"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in tail)
