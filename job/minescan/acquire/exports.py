"""Export requests: one Earth Engine export per scene (or chip, or table), fully serialised.

A request is built once with the client's own `Export.*.toCloudStorage` (so every option
is checked and translated exactly as the client would) and its image graph is encoded to
Cloud API JSON at once. The plan shows these bodies and the runner sends these bodies,
so what a dry run shows is what a real run submits.

Exact pixel grid: each image export gives `crs`, `crsTransform` (the scene's corner on the
global grid) and the pixel `dimensions`; the client turns that into a reprojection and a
clip to the rectangle [0, 0, W, H] *in the grid's pixel projection* — the export region.
A lon/lat region would be snapped outward to the pixel grid and can gain a row or column
from float rounding; the pixel rectangle cannot.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..batch.grid import Window
from . import session
from .config import ExportConfig

if TYPE_CHECKING:
    import ee

#: Earth Engine computes and writes GeoTIFFs in 256-px shards; file dimensions must be a multiple
SHARD_PX = 256
#: Earth Engine task descriptions allow these characters and at most 100 of them
_DESCRIPTION_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;_-")


@dataclass(frozen=True, slots=True)
class ExportJob:
    """One export: what to send, and the object it leaves in the bucket when it succeeds."""

    key: str
    kind: Literal["image", "table"]
    description: str
    object_uri: str
    request: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "description": self.description,
                "object_uri": self.object_uri, "request": self.request}


def description(kind: str, key: str, destination: str) -> str:
    """A task name unique to this key *and* destination, so a resumed run recognises its own
    running tasks and never adopts another run's."""
    digest = hashlib.sha256(destination.encode()).hexdigest()[:8]
    text = f"minescan_{kind}_{key}_{digest}".replace("/", "_")
    return "".join(ch if ch in _DESCRIPTION_OK else "-" for ch in text)[:100]


def image_job(
    image: ee.Image,
    key: str,
    window: Window,
    cfg: ExportConfig,
    *,
    nodata: float | None,
    kind: str = "s2",
) -> ExportJob:
    """A single-file Cloud-Optimized GeoTIFF export of `window` on its grid."""
    import ee

    prefix = cfg.prefix + key
    options: dict[str, Any] = {"cloudOptimized": True}
    if nodata is not None:
        options["noData"] = nodata
    task = ee.batch.Export.image.toCloudStorage(
        image=image,
        description=description(kind, key, cfg.destination),
        bucket=cfg.bucket,
        fileNamePrefix=prefix,
        dimensions=f"{window.size}x{window.size}",
        crs=window.grid.crs,
        crsTransform=list(window.transform),
        # a guard against a mis-sized request (twice the window), never against the window itself
        maxPixels=2 * window.size * window.size,
        fileFormat="GeoTIFF",
        formatOptions=options,
        # one file per scene: without this Earth Engine may split a large scene into tiles
        fileDimensions=math.ceil(window.size / SHARD_PX) * SHARD_PX,
        priority=cfg.priority,
    )
    return _job(task.config, key, "image", f"gs://{cfg.bucket}/{prefix}.tif")


def table_job(collection: ee.FeatureCollection, key: str, cfg: ExportConfig,
              *, selectors: list[str], kind: str) -> ExportJob:
    """A TFRecord table export (one example per feature), gzip-compressed."""
    import ee

    prefix = cfg.prefix + key
    task = ee.batch.Export.table.toCloudStorage(
        collection=collection,
        description=description(kind, key, cfg.destination),
        bucket=cfg.bucket,
        fileNamePrefix=prefix,
        fileFormat="TFRecord",
        selectors=selectors,
        priority=cfg.priority,
    )
    return _job(task.config, key, "table", f"gs://{cfg.bucket}/{prefix}.tfrecord.gz")


def _job(config: dict[str, Any], key: str, kind: Literal["image", "table"], uri: str) -> ExportJob:
    request = dict(config)
    request["expression"] = session.encode(request["expression"])
    return ExportJob(key=key, kind=kind, description=request["description"], object_uri=uri,
                     request=request)
