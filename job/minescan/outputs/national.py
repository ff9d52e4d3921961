"""Every national output of a run, written into one LOCAL directory the caller publishes.

    sites.parquet / .geojson / .kml / .csv, summary.md   the sites with footprints (`write_sites`)
    detections.parquet                                    every unique detection cell with its site_id
    register_unmatched.parquet / .csv                     register entries no site matched
    site_areas.csv, protected_areas.csv, regions.csv      protected land and region tables
    minescan.gpkg                                         sites, detections, register, protected land, scenes
    p_mine_mosaic.tif / .vrt                              national p(mine): COG, and VRT over scene COGs
    map.html                                              the offline interactive map
    report.html, report.pdf                               the agency report
    stac/collection.json (+ items)                        the catalog of all of the above

The reduce gives the run's `NationalSites` (docs/SITES.md), its facts and the scenes'
p(mine) tiles; this module never writes outside `out_dir` (the tiles' zarr stores are read,
never touched).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._atomic import write_text_atomic
from ._overlay import probability_overlay
from ._tables import write_geoparquet, write_table_csv
from .detections import write_detections_geoparquet
from .facts import RunFacts
from .gpkg import write_geopackage
from .rasters import MosaicTile, build_mosaic
from .report import CHANGED_ROWS, REPORT_PDF, ReportTables, print_pdf, write_report_html
from .sites import write_sites
from .stac import write_stac
from .webmap import map_html

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd


#: the sites stage's `sites.national.NationalSites` (docs/SITES.md), of which the national
#: outputs read `sites`, `detections`, `register_unmatched`, `site_areas`, `protected_areas`,
#: `regions` and `summary`; named, not imported, because this room does not import `sites/`
NationalTables = Any

log = logging.getLogger(__name__)

#: output name → file name, besides the sites outputs of SITE_FILES
NATIONAL_FILES: dict[str, str] = {
    "detections": "detections.parquet",
    "register_unmatched": "register_unmatched.parquet",
    "register_unmatched_csv": "register_unmatched.csv",
    "site_areas": "site_areas.csv",
    "protected_areas": "protected_areas.csv",
    "regions": "regions.csv",
    "gpkg": "minescan.gpkg",
    "map": "map.html",
}
MOSAIC = "p_mine_mosaic"


def write_national(
    out_dir: str | os.PathLike[str],
    national: NationalTables,
    *,
    summary: dict[str, Any],
    facts: RunFacts | None = None,
    title: str = "minescan national sites",
    tiles: Sequence[MosaicTile] = (),
    inputs: Any = None,
    changes: gpd.GeoDataFrame | None = None,
    changes_summary: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write every national output into local `out_dir`; returns {output name: path}.

    `summary` is what the caller knows of the run (scenes, models); the sites' own figures
    (`national.summary`) follow it in `summary.md`. `facts` (default: only `title`) tell
    the map and the report about the run; `inputs` (the sites stage's `SitesInputs`: the
    registers and protected-land layers the sites were matched against) give the map and
    the GeoPackage those layers. `changes` (`minescan diff`'s table against an earlier run)
    and its `changes_summary` go into `changes/` and the report.
    """
    from ..log import progress

    out = Path(out_dir)
    facts = facts or RunFacts(title=title, run="", aoi="not recorded", period=None,
                              imagery="not recorded", scenes=(), models=())
    files = {key: out / name for key, name in NATIONAL_FILES.items()}
    tables = report_tables(national, inputs, changes, changes_summary)
    shown = displayed_sites(national, inputs)
    made: dict[str, Any] = {"mosaic": None}

    def tables_step(pool: ThreadPoolExecutor) -> None:
        # 10⁶ detection points are built, encoded and compressed by shapely and Arrow, which
        # let go of the GIL: a worker writes them while this thread writes the sites' text
        # files. Nothing else reads the detections table until the worker is done.
        detections = pool.submit(write_detections_geoparquet, files["detections"], national.detections)
        files.update(write_sites(out, national.sites, title=facts.display_title,
                                 summary={**summary, **national.summary}, warnings=facts.warnings, shown=shown))
        detections.result()
        write_geoparquet(files["register_unmatched"], national.register_unmatched)
        write_table_csv(files["register_unmatched_csv"], _without_geometry(national.register_unmatched))
        write_table_csv(files["site_areas"], national.site_areas)
        write_table_csv(files["protected_areas"], national.protected_areas)
        write_table_csv(files["regions"], national.regions)
        write_geopackage(files["gpkg"], shown, national.detections, facts, register=tables.register,
                         protected=tables.protected, changes=changes)
        if changes is not None:
            from .changes import CHANGE_FILES, write_changes

            (out / CHANGES_DIR).mkdir(exist_ok=True)
            write_changes(out / CHANGES_DIR, changes, changes_summary or {})
            files["changes"] = out / CHANGES_DIR / CHANGE_FILES[0]

    def mosaic_step() -> None:
        if not tiles:
            log.warning("no scene on the run's grid: no p(mine) mosaic", extra={"scenes": len(facts.scenes)})
            return
        made["mosaic"] = build_mosaic(out, tiles, name=MOSAIC)
        files["mosaic_cog"], files["mosaic_vrt"] = made["mosaic"].cog, made["mosaic"].vrt

    def map_step() -> None:
        overlay = probability_overlay(made["mosaic"].cog) if made["mosaic"] else None
        page = map_html(shown, facts, overlay=overlay, register=tables.register, protected=tables.protected,
                        changes=changes)
        write_text_atomic(files["map"], page)

    def report_step(pool: ThreadPoolExecutor) -> None:
        cog = made["mosaic"].cog if made["mosaic"] else None
        files["report"] = write_report_html(out, shown, facts, tables=tables, mosaic=cog,
                                            n_detections=len(national.detections))
        # Chromium prints the PDF in its own process while the other outputs are written
        made["pdf"] = pool.submit(print_pdf, files["report"], out / REPORT_PDF)

    def stac_step() -> None:
        pdf: Future[Path | None] = made["pdf"]
        if (printed := pdf.result()) is not None:
            files["report_pdf"] = printed
        products = {key: path for key, path in files.items() if key not in ("mosaic_cog", "mosaic_vrt")}
        files["stac"] = write_stac(out, facts, products, mosaic=made["mosaic"])

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="minescan-outputs") as pool:
        steps = (mosaic_step, lambda: report_step(pool), map_step, lambda: tables_step(pool), stac_step)
        for step in progress(steps, len(steps), "national outputs"):
            step()
    return files


def displayed_sites(national: NationalTables, inputs: Any) -> gpd.GeoDataFrame:
    """The sites as people are shown them: `registered` / `protected` unknown (NA) when the
    run was given no register / no protected-land layer, rather than a misleading False."""
    import pandas as pd

    shown = national.sites.copy()
    if inputs is None or not inputs.registers:
        shown["registered"] = pd.array([pd.NA] * len(shown), dtype="boolean")
    if inputs is None or not inputs.protected:
        shown["protected"] = pd.array([pd.NA] * len(shown), dtype="boolean")
    return shown


def report_tables(national: NationalTables, inputs: Any, changes: pd.DataFrame | None = None,
                  changes_summary: dict[str, Any] | None = None) -> ReportTables:
    """The optional layers and tables the map, the report and the GeoPackage show."""
    import geopandas as gpd
    import pandas as pd

    protected = None
    if inputs is not None and inputs.protected:
        protected = gpd.GeoDataFrame(
            pd.concat([layer.frame.assign(layer=layer.source) for layer in inputs.protected], ignore_index=True),
            geometry="geometry", crs="EPSG:4326",
        )
    return ReportTables(
        protected_totals=national.protected_areas if protected is not None else None,
        region_totals=national.regions if inputs is not None and inputs.regions is not None else None,
        changes=None if changes is None else changed_sites(changes, inputs),
        change_counts=None if changes is None else change_counts(changes, changes_summary or {}),
        register=register_entries(national, inputs),
        protected=protected,
    )


#: where the changes since `--previous` go, beside the sites
CHANGES_DIR = "changes"


def change_counts(changes: pd.DataFrame, summary: dict[str, Any]) -> pd.DataFrame:
    """Sites and hectares per kind of change since the previous run (the report's table)."""
    import pandas as pd

    rows = []
    for kind in ("new", "grown", "shrunk", "vanished", "unchanged"):
        of = changes[changes["change"] == kind]
        rows.append({"change": kind, "sites": len(of), "area before (ha)": round(float(of["area_before_ha"].sum()), 1),
                     "area now (ha)": round(float(of["area_after_ha"].sum()), 1),
                     "gained (ha)": round(float(of["gained_ha"].sum()), 1),
                     "lost (ha)": round(float(of["lost_ha"].sum()), 1)})
    table = pd.DataFrame(rows)
    table.attrs["previous"] = summary.get("before", "")
    table.attrs["options"] = summary["options"]
    return table


def changed_sites(changes: pd.DataFrame, inputs: Any = None) -> pd.DataFrame:
    """The changed sites the report lists: new, grown, shrunk and vanished, the largest area
    change first within each kind, at most CHANGED_ROWS of them; `registered` / `protected`
    "unknown" when the run was given no register / no protected-land layer."""
    import numpy as np

    changed = changes[changes["change"] != "unchanged"]
    order = ("new", "grown", "shrunk", "vanished")
    rank = np.lexsort((-changed["area_change_ha"].abs().to_numpy(),
                       [order.index(c) for c in changed["change"]]))
    columns = ["change", "site_id", "before_ids", "area_before_ha", "area_after_ha", "area_change_ha",
               "impact_class", "registered", "protected"]
    shown = changed.iloc[rank][columns].head(CHANGED_ROWS).reset_index(drop=True)
    for column, known in (("registered", inputs is not None and inputs.registers),
                          ("protected", inputs is not None and inputs.protected)):
        shown[column] = [("yes" if v else "no") if known else "unknown" for v in shown[column]]
    return shown


def register_entries(national: NationalTables, inputs: Any) -> pd.DataFrame | None:
    """Every entry of the run's registers with lon/lat, `matched` and the matching `site_id`."""
    import pandas as pd

    if inputs is None or not inputs.registers:
        return None
    sites = national.sites
    frames = []
    for register in inputs.registers:
        entries = register.entries
        points = entries.geometry.representative_point()
        of_register = sites.loc[sites["register_source"] == register.source, ["register_id", "site_id"]]
        matched = dict(zip(of_register["register_id"], of_register["site_id"], strict=True))
        table = pd.DataFrame(entries.drop(columns=entries.geometry.name)).assign(
            source=register.source, lon=points.x.to_numpy(), lat=points.y.to_numpy())
        table["site_id"] = pd.array([matched.get(e) for e in table["entry_id"]], dtype="string")
        table["matched"] = table["site_id"].notna().to_numpy()
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def _without_geometry(frame):
    """A table for spreadsheets: lon/lat of point geometries as columns, WKT of the rest."""
    import shapely

    geoms = frame.geometry.to_numpy()
    table = frame.drop(columns=frame.geometry.name)
    points = shapely.get_type_id(geoms) == 0
    table["lon"] = [g.x if p else None for g, p in zip(geoms, points, strict=True)]
    table["lat"] = [g.y if p else None for g, p in zip(geoms, points, strict=True)]
    table["wkt"] = [None if p else g.wkt for g, p in zip(geoms, points, strict=True)]
    return table
