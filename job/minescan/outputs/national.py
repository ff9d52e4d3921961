"""Writing a run's national sites (a `sites.national.NationalSites`) to a local directory.

The sites table goes out in every format `write_sites` knows (with footprint polygons);
beside it the detections with their site ids, the register entries no site matched, and
the per-site and per-area tables of protected land and regions (docs/SITES.md). Every file
is written through a temp name and renamed; the caller publishes the directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._tables import write_geoparquet, write_table_csv
from .detections import write_detections_geoparquet
from .sites import write_sites

#: output name → file name, besides the sites outputs of SITE_FILES
NATIONAL_FILES: dict[str, str] = {
    "detections": "detections.parquet",
    "register_unmatched": "register_unmatched.parquet",
    "register_unmatched_csv": "register_unmatched.csv",
    "site_areas": "site_areas.csv",
    "protected_areas": "protected_areas.csv",
    "regions": "regions.csv",
}


def write_national(out_dir: str | os.PathLike[str], national: Any, *, title: str,
                   summary: dict[str, Any]) -> dict[str, Path]:
    """Write every national output (of a `sites.national.NationalSites`) into `out_dir`;
    returns {output name: path}.

    `summary` is what the caller knows of the run (scenes, models); the sites' own figures
    (`national.summary`) follow it in `summary.md`.
    """
    out = Path(out_dir)
    paths = write_sites(out, national.sites, title=title, summary={**summary, **national.summary})
    more = {key: out / name for key, name in NATIONAL_FILES.items()}
    write_detections_geoparquet(more["detections"], national.detections)
    write_geoparquet(more["register_unmatched"], national.register_unmatched)
    write_table_csv(more["register_unmatched_csv"], _without_geometry(national.register_unmatched))
    write_table_csv(more["site_areas"], national.site_areas)
    write_table_csv(more["protected_areas"], national.protected_areas)
    write_table_csv(more["regions"], national.regions)
    return {**paths, **more}


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
