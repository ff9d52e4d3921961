"""Plans: the scenes, chips or mosaics to export, with their exact Earth Engine requests.

A plan is built inside an Earth Engine session (`session.offline()` for a dry run,
`session.initialise()` for a real one) and is the same in both: the dry run's JSON is
what the real run submits.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..batch import grid as grid_mod
from ..batch.manifest import GridDef, Manifest, SceneEntry
from ..errors import InputError
from ..points import LabelledPoint
from . import composite, exports, session
from .config import ChipConfig, CompositeConfig, ExportConfig, LandsatConfig

if TYPE_CHECKING:
    import ee
    from shapely.geometry.base import BaseGeometry

#: L1C has no valid zero reflectance: 0 marks pixels with no cloud-free observation
S2_NODATA = 0
LANDSAT_NODATA = -9999.0
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Plan:
    """What an acquisition will export. `manifest` is written once every job succeeded."""

    kind: str
    jobs: list[exports.ExportJob]
    image: dict[str, Any]
    manifest: Manifest | None
    manifest_uri: str | None
    index_csv: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n_exports": len(self.jobs),
            "image_graph": self.image,
            "manifest_uri": self.manifest_uri,
            "manifest": self.manifest.model_dump(mode="json") if self.manifest else None,
            "chip_index_csv": self.index_csv,
            "exports": [j.as_json() for j in self.jobs],
        }


def _rectangle(b: grid_mod.Bounds) -> ee.Geometry:
    import ee

    return ee.Geometry.Rectangle([b.west, b.south, b.east, b.north], "EPSG:4326", False)


def plan_scenes(aoi: BaseGeometry, cfg: CompositeConfig, out: ExportConfig,
                manifest_uri: str | None = None) -> Plan:
    """One uint16 COG export per grid scene that owns cells of the AOI."""
    scenes = grid_mod.scenes_for_aoi(aoi, grid_mod.S2_GRID)
    if not scenes:
        raise InputError("the AOI touches no scene of the grid")
    jobs, entries = [], []
    for s in scenes:
        image = composite.s2_composite(cfg, _rectangle(s.bounds))
        job = exports.image_job(image, s.id, s.window, out, nodata=S2_NODATA, kind="s2")
        jobs.append(job)
        entries.append(SceneEntry.from_scene(s, job.object_uri))
    manifest = Manifest(
        grid=GridDef.from_spec(grid_mod.S2_GRID),
        bands=list(cfg.bands),
        dtype="uint16",
        nodata=S2_NODATA,
        source={"sensor": "Sentinel-2 L1C", **cfg.model_dump(mode="json")},
        scenes=entries,
    )
    return Plan("scenes", jobs, session.encode(composite.s2_composite(cfg)), manifest,
                manifest_uri or f"{out.destination}/manifest.json")


def plan_landsat(aoi: BaseGeometry, cfg: LandsatConfig, out: ExportConfig,
                 manifest_uri: str | None = None) -> Plan:
    """One float32 COG per year and Landsat grid tile over the AOI; ids are `{year}_{tile}`."""
    tiles = grid_mod.scenes_for_aoi(aoi, grid_mod.LANDSAT_GRID)
    if not tiles:
        raise InputError("the AOI touches no tile of the Landsat grid")
    jobs, entries = [], []
    for year in range(cfg.first_year, cfg.last_year + 1):
        for t in tiles:
            key = f"{year}/{t.id}"
            image = composite.landsat_mosaic(year, cfg, _rectangle(t.bounds))
            job = exports.image_job(image, key, t.window, out, nodata=LANDSAT_NODATA, kind="landsat")
            jobs.append(job)
            entry = SceneEntry.from_scene(t, job.object_uri)
            entries.append(entry.model_copy(update={"id": f"{year}_{t.id}"}))
    manifest = Manifest(
        grid=GridDef.from_spec(grid_mod.LANDSAT_GRID),
        bands=list(composite.LANDSAT_BANDS),
        dtype="float32",
        nodata=LANDSAT_NODATA,
        source={"sensor": "Landsat C2 T1 TOA", **cfg.model_dump(mode="json")},
        scenes=entries,
    )
    image = session.encode(composite.landsat_mosaic(cfg.first_year, cfg))
    return Plan("landsat", jobs, image, manifest, manifest_uri or f"{out.destination}/manifest.json")


def plan_chips(points: list[LabelledPoint], cfg: CompositeConfig, chips: ChipConfig,
               out: ExportConfig) -> Plan:
    """Chips around every point at every size, as GeoTIFFs (one per chip) or TFRecord
    (one file per size). Writes nothing; `index_csv` lists every chip."""
    if not points:
        raise InputError("no points to cut chips around")
    if chips.file_format == "GeoTIFF":
        jobs, rows = _geotiff_chips(points, cfg, chips, out)
    else:
        jobs, rows = _tfrecord_chips(points, cfg, chips, out)
    return Plan("chips", jobs, session.encode(composite.s2_composite(cfg)), None, None,
                index_csv=_index_csv(rows))


def chip_key(size: int, point: LabelledPoint) -> str:
    """`chips201/mine/anm0001`: size, then label, so a training reader can list a class."""
    return f"chips{size}/{_SAFE.sub('_', point.label)}/{_SAFE.sub('_', point.id)}"


def _geotiff_chips(points: list[LabelledPoint], cfg: CompositeConfig, chips: ChipConfig,
                   out: ExportConfig) -> tuple[list[exports.ExportJob], list[dict[str, Any]]]:
    jobs, rows = [], []
    for size in chips.sizes:
        for p in points:
            window = grid_mod.centred_window(p.lon, p.lat, size)
            image = composite.s2_composite(cfg, _rectangle(window.bounds))
            job = exports.image_job(image, chip_key(size, p), window, out, nodata=S2_NODATA,
                                    kind=f"chip{size}")
            jobs.append(job)
            rows.append(_row(p, size, window, job.object_uri))
    return jobs, rows


def _tfrecord_chips(points: list[LabelledPoint], cfg: CompositeConfig, chips: ChipConfig,
                    out: ExportConfig) -> tuple[list[exports.ExportJob], list[dict[str, Any]]]:
    """Per size, a table of examples: each band a size×size float array centred on the
    point's pixel of the global grid, plus id, label, ore, lon, lat."""
    import ee

    g = grid_mod.S2_GRID
    projection = ee.Projection(g.crs, [g.pixel_deg, 0, g.origin_lon, 0, -g.pixel_deg, g.origin_lat])
    jobs, rows = [], []
    for size in chips.sizes:
        features = []
        for p in points:
            window = grid_mod.centred_window(p.lon, p.lat, size)
            centre = grid_mod.point_pixel(p.lon, p.lat)
            # sample at the pixel centre, so the array is centred on the grid, not on the point
            lon, lat = g.lon(centre.col + 0.5), g.lat(centre.row + 0.5)
            features.append(ee.Feature(ee.Geometry.Point([lon, lat]), {
                "id": p.id, "label": p.label, "ore": p.ore or "", "lon": p.lon, "lat": p.lat}))
            rows.append(_row(p, size, window, None))
        collection = ee.FeatureCollection(features)
        arrays = (
            composite.s2_composite(cfg, collection.geometry()).toFloat()
            .reproject(projection)
            .neighborhoodToArray(ee.Kernel.square(size // 2, "pixels"))
        )
        samples = arrays.sampleRegions(collection=collection, properties=["id", "label", "ore", "lon", "lat"],
                                       projection=projection, tileScale=16)
        job = exports.table_job(samples, f"chips{size}", out, kind=f"chip{size}",
                                selectors=[*cfg.bands, "id", "label", "ore", "lon", "lat"])
        jobs.append(job)
        rows = [dict(r, uri=job.object_uri) if r["size"] == size else r for r in rows]
    return jobs, rows


def _row(p: LabelledPoint, size: int, window: grid_mod.Window, uri: str | None) -> dict[str, Any]:
    return {"id": p.id, "name": p.name or "", "label": p.label, "ore": p.ore or "", "lon": p.lon,
            "lat": p.lat, "size": size, "pixel_row": window.pixel_row, "pixel_col": window.pixel_col,
            "uri": uri}


def _index_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
