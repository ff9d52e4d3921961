"""`report.html` and `report.pdf`: what an agency reads and attaches to a request.

The page is rendered from a Jinja2 template with matplotlib figures embedded as data
URIs (one file, nothing fetched). The PDF is that same page printed by headless Chromium
(`--print-to-pdf`): the renderer the map is tested in, with CSS paged media (A4, page
breaks) and no second layout engine to keep in step. Without a Chromium on the machine the
PDF is skipped with a warning and the HTML stands alone.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models.networks import IMPACT_CLASSES
from ._atomic import atomic_path, write_text_atomic
from ._kml import UNREGISTERED_RGB, google_maps_url
from ._site_view import (
    RANKING_RULE,
    area_ha,
    flag,
    footprints,
    known_count,
    rank_sites,
    text_list,
)
from ._tables import impact_hex, records
from .facts import RunFacts
from .webmap import boundaries, render

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

log = logging.getLogger(__name__)

#: sites listed in the report's ranked table (all of them are in sites.csv / the GeoPackage)
RANKED_ROWS = 100
#: how many changed sites the report lists (all of them are in changes/changes.csv)
CHANGED_ROWS = 100
#: Chromium builds, by the names Debian and others install them under
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--no-pdf-header-footer",
)
METHOD = (
    "Each Sentinel-2 L1C scene (a per-pixel median composite of 12 bands at 10 m) is scanned by the "
    "discovery network of Balaniuk, Isupova & Reece (Sensors 2020, §3.3, Table 2), a fully "
    "convolutional network that gives, for every 27 × 27-pixel output cell, the probability that "
    "the 201 × 201-pixel chip centred on it shows a surface mine or tailings dam. Cells with "
    "p(mine) at or above the model's threshold are candidates; the impact network of the same "
    "paper (§3.4, Table 3) classifies the 21 × 21-pixel patch at each candidate's centre as high "
    "impact, low impact or no ore. Overlapping scenes compute the same national cells once; "
    "detections closer than the link distance are merged into sites."
)
CITATION = (
    "Balaniuk, R., Isupova, O., Reece, S. Mining and Tailings Dam Detection in Satellite Imagery "
    "Using Deep Learning. Sensors 2020, 20(23), 6936."
)
LIMITATIONS = (
    "p(mine) is a network's score, not a calibrated probability; treat it as a ranking.",
    "A site is a cluster of 270 m cells: its footprint is as coarse as the cells, and two mines "
    "closer than the link distance form one site.",
    "Look-alikes (water-supply dams, river banks, bare fields, towns) can be detected as mines; "
    "every site needs a look at recent imagery before any action.",
    "Cloud, haze and missing scenes hide mines: a missing scene is listed above and drawn on the map.",
    "The impact class follows the ore the network infers from a 210 m patch; it is not a field assessment.",
    "\"Unregistered\" means no register entry lies within the matching distance, not that a mine is illegal.",
)


@dataclass(frozen=True)
class ReportTables:
    """Optional tables from the sites stage; each is shown when given."""

    protected_totals: pd.DataFrame | None = None
    region_totals: pd.DataFrame | None = None
    changes: pd.DataFrame | None = None
    change_counts: pd.DataFrame | None = None
    register: pd.DataFrame | None = None
    protected: gpd.GeoDataFrame | None = None


#: the report's file names in the output directory
REPORT_HTML, REPORT_PDF = "report.html", "report.pdf"


def write_report_html(
    out_dir: str | os.PathLike[str],
    sites: pd.DataFrame,
    facts: RunFacts,
    *,
    tables: ReportTables | None = None,
    mosaic: str | os.PathLike[str] | None = None,
    n_detections: int | None = None,
) -> Path:
    """Write report.html into `out_dir`; returns its path. `print_pdf` prints it to
    report.pdf (in a process of its own, so the caller may go on meanwhile)."""
    path = Path(out_dir) / REPORT_HTML
    html = report_html(sites, facts, tables=tables or ReportTables(), mosaic=mosaic, n_detections=n_detections)
    write_text_atomic(path, html)
    return path


def report_html(
    sites: pd.DataFrame,
    facts: RunFacts,
    *,
    tables: ReportTables,
    mosaic: str | os.PathLike[str] | None = None,
    n_detections: int | None = None,
) -> str:
    ranked = rank_sites(sites, limit=RANKED_ROWS)
    unregistered, protected = ~flag(sites, "registered"), flag(sites, "protected")
    counts = {
        "sites": len(sites),
        "detections": int(sites["n_detections"].sum()) if n_detections is None else n_detections,
        "area_ha": float(area_ha(sites).sum()),
        "unregistered": known_count(unregistered),
        "protected": known_count(protected),
        "high": int((sites["impact_class"] == "high").sum()),
    }
    by_class = [
        {"cls": cls, "colour": impact_hex(cls), "sites": int((sites["impact_class"] == cls).sum()),
         "area_ha": float(area_ha(sites[sites["impact_class"] == cls]).sum())}
        for cls in IMPACT_CLASSES
    ]
    return render(
        "report.html.j2",
        facts=facts,
        counts=counts,
        by_class=by_class,
        ranked=[_ranked_row(row) for row in records(ranked.drop(columns=["geometry"], errors="ignore"))],
        n_ranked=min(RANKED_ROWS, len(ranked)),
        ranking_rule=RANKING_RULE,
        method=METHOD,
        citation=CITATION,
        limitations=LIMITATIONS,
        protected_totals=_table(tables.protected_totals),
        region_totals=_table(tables.region_totals),
        changes=_table(tables.changes),
        change_counts=_table(tables.change_counts),
        previous_run=None if tables.change_counts is None else tables.change_counts.attrs.get("previous", ""),
        n_changed=0 if tables.changes is None else len(tables.changes),
        changed_rows=CHANGED_ROWS,
        change_options=None if tables.change_counts is None else tables.change_counts.attrs["options"],
        map_png=_figure_uri(lambda ax: _map_figure(ax, sites, facts, mosaic, tables.protected), size=(7.5, 6.0)),
        bars_png=_figure_uri(lambda ax: _bars_figure(ax, sites), size=(7.5, 3.0)),
        regions_png=None if tables.region_totals is None or tables.region_totals.empty
        else _figure_uri(lambda ax: _regions_figure(ax, tables.region_totals), size=(7.5, 3.5)),
    )


def print_pdf(html: Path, pdf: Path, timeout_s: float = 180.0) -> Path | None:
    """Print `html` to `pdf` with headless Chromium; None (logged) when there is none."""
    browser = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    if browser is None:
        log.warning("no Chromium found: report.pdf not written", extra={"looked_for": CHROMIUM_NAMES})
        return None
    with atomic_path(pdf) as tmp, tempfile.TemporaryDirectory(prefix="minescan-chromium-") as profile:
        command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={tmp}",
                   html.resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
        if done.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
            log.warning("Chromium could not print the report: report.pdf not written",
                        extra={"returncode": done.returncode, "stderr": done.stderr.decode(errors="replace")[-500:]})
            return None
    return pdf


def _ranked_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "area_ha": row.get("area_ha", (row.get("area_km2") or 0.0) * 100.0),
        "registered_text": _yes_no(row.get("registered")),
        "protected_text": _yes_no(row.get("protected")) + (
            f" ({text_list(row['protected_names'])})" if row.get("protected_names") else ""),
        "regions_text": text_list(row.get("regions")),
        "maps_url": google_maps_url(row["lat"], row["lon"]),
    }


def _yes_no(value: Any) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _table(df: pd.DataFrame | None) -> dict[str, Any] | None:
    if df is None:
        return None
    plain = df.drop(columns=["geometry"], errors="ignore")
    return {"columns": list(plain.columns), "rows": [[text_list(v) if isinstance(v, list) else v for v in r.values()]
                                                     for r in records(plain)]}


def _figure_uri(draw: Any, *, size: tuple[float, float]) -> str:
    """Run `draw(ax)` on a fresh matplotlib figure; the PNG as a data URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=150, layout="constrained")
    try:
        draw(ax)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _map_figure(ax: Any, sites: pd.DataFrame, facts: RunFacts, mosaic: Any, protected: Any) -> None:
    import math

    import geopandas as gpd
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Patch

    from ._overlay import COLORMAP

    boxes = [scene.bounds for scene in facts.scenes if scene.bounds is not None]
    shapes = footprints(sites)
    extent = list(shapes.total_bounds) if len(sites) else None
    if boxes:
        extent = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    if mosaic is not None:
        import rasterio
        from rasterio.enums import Resampling

        with rasterio.open(mosaic) as src:
            scale = max(1.0, max(src.width, src.height) / 1200)
            grid = src.read(1, out_shape=(max(1, round(src.height / scale)), max(1, round(src.width / scale))),
                            resampling=Resampling.average)
            b = src.bounds
        image = ax.imshow(grid, extent=(b.left, b.right, b.bottom, b.top), cmap=COLORMAP, vmin=0, vmax=1,
                          interpolation="nearest", zorder=1)
        ax.figure.colorbar(image, ax=ax, shrink=0.6, label="p(mine)")
    outlines = gpd.GeoDataFrame.from_features(boundaries()["features"], crs="EPSG:4326")
    outlines.boundary.plot(ax=ax, color="#555", linewidth=0.6, zorder=2)
    if protected is not None and len(protected):
        protected.to_crs("EPSG:4326").plot(ax=ax, color="#5aae61", alpha=0.35, edgecolor="#1b7837", zorder=2)
    for committed, colour, style in ((True, "#1f5fa8", "-"), (False, "#b00020", "--")):
        # one collection per kind: a national run has 10³ scenes
        rings = [[(w, s), (e, s), (e, n), (w, n), (w, s)] for scene in facts.scenes
                 if scene.bounds is not None and scene.committed == committed
                 for w, s, e, n in [scene.bounds]]
        if rings:
            ax.add_collection(LineCollection(rings, colors=colour, linestyles=style, linewidths=0.8, zorder=3))
    pixel = 0.0
    if extent is not None:
        pad = max(extent[2] - extent[0], extent[3] - extent[1]) * 0.05 or 0.01
        ax.set_xlim(extent[0] - pad, extent[2] + pad)
        ax.set_ylim(extent[1] - pad, extent[3] + pad)
        ax.set_aspect(1 / math.cos(math.radians((extent[1] + extent[3]) / 2)))
        # the axes are narrower than the figure, so a pixel spans at least this much
        width_px, height_px = ax.figure.get_size_inches() * ax.figure.dpi
        pixel = min((extent[2] - extent[0] + 2 * pad) / width_px, (extent[3] - extent[1] + 2 * pad) / height_px)
    if len(sites):
        _draw_sites(ax, sites, shapes.to_numpy(), pixel)
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    handles = [Patch(facecolor=impact_hex(c), edgecolor="#333", label=f"{c} impact") for c in IMPACT_CLASSES]
    handles.append(Patch(facecolor="none", edgecolor="#b00020", linestyle="--", label="missing scene"))
    ax.legend(handles=handles, loc="lower left", fontsize=7, framealpha=0.9)
    ax.set_title("SYNTHETIC run — sites and p(mine)" if facts.synthetic else "Sites and p(mine)", fontsize=10)


def _draw_sites(ax: Any, sites: pd.DataFrame, shapes: Any, pixel: float) -> None:
    """Footprints, and a dot at each site (a site smaller than a printed dot would vanish),
    filled by impact class, outlined magenta where no register lists the site.

    A national run has 10⁵ sites, most far below a pixel: one matplotlib patch per
    footprint (geopandas' plot) took 20 s of object building, and one scatter with a
    colour per dot 2 s of drawing. So each style (impact class × registered) is one
    compound path of footprints and one single-coloured scatter of dots, drawn so that
    where dots overlap the more serious one is on top: unregistered over registered,
    high impact over low. A footprint less than `pixel` (degrees) across both ways lies
    under its site's dot (a dot is several pixels wide and sits on one of the site's
    cells), so it is not drawn."""
    import numpy as np
    import shapely
    from matplotlib.collections import PathCollection

    unregistered = (~flag(sites, "registered")).fillna(False).to_numpy(bool)
    impact = sites["impact_class"].to_numpy(dtype=object)
    lon, lat = sites["lon"].to_numpy(float), sites["lat"].to_numpy(float)
    bounds = shapely.bounds(shapes)
    visible = (bounds[:, 2] - bounds[:, 0] >= pixel) | (bounds[:, 3] - bounds[:, 1] >= pixel)
    polygonal = visible & np.isin(shapely.get_type_id(shapes),
                                  [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON])
    edges = {False: "#333", True: "#{:02x}{:02x}{:02x}".format(*UNREGISTERED_RGB)}
    for flagged, edge in edges.items():
        for cls in reversed(IMPACT_CLASSES):
            style = (unregistered == flagged) & (impact == cls)
            if (drawn := polygonal & style).any():
                # a collection: add_patch would measure the path's limits segment by segment in Python
                ax.add_collection(PathCollection([_compound_path(shapes[drawn])], facecolors=impact_hex(cls),
                                                 edgecolors=edge, linewidths=0.8, zorder=4))
            if style.any():
                ax.scatter(lon[style], lat[style], s=6, c=impact_hex(cls), edgecolors=edge, linewidths=0.5, zorder=5)


def _compound_path(shapes: Any) -> Any:
    """One matplotlib Path of every ring of `shapes` ((multi)polygons): each ring closed, as
    geopandas draws a polygon, exteriors and holes wound oppositely so holes stay empty."""
    import numpy as np
    import shapely
    from matplotlib.path import Path

    rings = shapely.get_rings(shapely.get_parts(shapely.orient_polygons(shapes)))
    vertices, ring_of = shapely.get_coordinates(rings, return_index=True)
    codes = np.full(len(vertices), Path.LINETO, dtype=Path.code_type)
    starts = np.r_[0, np.flatnonzero(np.diff(ring_of)) + 1]
    codes[starts] = Path.MOVETO
    codes[np.r_[starts[1:] - 1, len(vertices) - 1]] = Path.CLOSEPOLY
    return Path(vertices, codes)


def _bars_figure(ax: Any, sites: pd.DataFrame) -> None:
    import numpy as np

    registered = flag(sites, "registered")
    groups = (("not in a register", registered == False), ("registered", registered == True),  # noqa: E712
              ("register unknown", registered.isna()))
    x = np.arange(len(IMPACT_CLASSES))
    bottom = np.zeros(len(IMPACT_CLASSES))
    for (label, mask), colour in zip(groups, ("#c51b7d", "#4d9221", "#bbbbbb"), strict=True):
        mask = mask.fillna(False).to_numpy(dtype=bool)
        values = np.array([int(((sites["impact_class"] == cls).to_numpy() & mask).sum()) for cls in IMPACT_CLASSES])
        if values.any():
            ax.bar(x, values, bottom=bottom, color=colour, label=label)
            bottom += values
    ax.set_xticks(x, [f"{cls} impact" for cls in IMPACT_CLASSES])
    ax.set_ylabel("sites")
    ax.set_title("Sites per impact class and register status", fontsize=10)
    if bottom.any():
        ax.legend(fontsize=8)


def _regions_figure(ax: Any, totals: pd.DataFrame) -> None:
    name = next((c for c in ("region", "name", "state") if c in totals), totals.columns[0])
    value = next((c for c in ("sites", "n_sites", "area_ha") if c in totals), totals.columns[-1])
    top = totals.sort_values(value, ascending=False).head(15)
    ax.barh(top[name].astype(str)[::-1], top[value][::-1], color="#1f5fa8")
    ax.set_xlabel(value)
    ax.set_title(f"{value} per region (top {len(top)})", fontsize=10)
