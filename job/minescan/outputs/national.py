"""Every national output of a run, written into one LOCAL directory the caller publishes.

    sites.parquet / .geojson / .kml / .csv, summary.md   the sites tables (`write_sites`)
    minescan.gpkg                                         sites, detections, register, scenes
    p_mine_mosaic.tif / .vrt                              national p(mine): COG, and VRT over scene COGs
    map.html                                              the offline interactive map
    report.html, report.pdf                               the agency report
    stac/collection.json (+ items)                        the catalog of all of the above

The reduce gives the sites, the detections, the run's facts and the scenes' p(mine)
tiles; this module never reads or writes anything outside `out_dir` (the tiles' zarr
stores are read, never touched).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._atomic import write_text_atomic
from ._overlay import probability_overlay
from .facts import RunFacts
from .gpkg import write_geopackage
from .rasters import MosaicTile, build_mosaic
from .report import ReportTables, write_report
from .sites import coerce_sites, write_sites
from .stac import write_stac
from .webmap import map_html

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

GEOPACKAGE = "minescan.gpkg"
MAP = "map.html"
MOSAIC = "p_mine_mosaic"


def write_national(
    out_dir: str | os.PathLike[str],
    sites: pd.DataFrame,
    detections: pd.DataFrame,
    facts: RunFacts,
    *,
    summary: dict,
    tiles: Sequence[MosaicTile] = (),
    tables: ReportTables | None = None,
) -> dict[str, Path]:
    """Write every national output into local `out_dir`; returns {output name: path}."""
    from ..log import progress

    out = Path(out_dir)
    tables = tables or ReportTables()
    sites = coerce_sites(sites)
    files: dict[str, Path] = {}
    made: dict[str, Any] = {"mosaic": None}

    def tables_step() -> None:
        files.update(write_sites(out, sites, title=facts.display_title, summary=summary, warnings=facts.warnings))
        files["gpkg"] = out / GEOPACKAGE
        write_geopackage(files["gpkg"], sites, detections, facts, register=tables.register, protected=tables.protected)

    def mosaic_step() -> None:
        if not tiles:
            log.warning("no scene on the run's grid: no p(mine) mosaic", extra={"scenes": len(facts.scenes)})
            return
        made["mosaic"] = build_mosaic(out, tiles, name=MOSAIC)
        files["mosaic_cog"], files["mosaic_vrt"] = made["mosaic"].cog, made["mosaic"].vrt

    def map_step() -> None:
        overlay = probability_overlay(made["mosaic"].cog) if made["mosaic"] else None
        files["map"] = out / MAP
        page = map_html(sites, facts, overlay=overlay, register=tables.register, protected=tables.protected)
        write_text_atomic(files["map"], page)

    def report_step() -> None:
        cog = made["mosaic"].cog if made["mosaic"] else None
        files.update(write_report(out, sites, facts, tables=tables, mosaic=cog, n_detections=len(detections)))

    def stac_step() -> None:
        products = {key: path for key, path in files.items() if key not in ("mosaic_cog", "mosaic_vrt")}
        files["stac"] = write_stac(out, facts, products, mosaic=made["mosaic"])

    steps = (tables_step, mosaic_step, map_step, report_step, stac_step)
    for step in progress(steps, len(steps), "national outputs"):
        step()
    return files
