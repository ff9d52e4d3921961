"""Output writers and readers, all to local paths; the batch room commits and uploads them.

The formats are the data contracts of docs/ARCHITECTURE.md. May import the shared facts
and `models.networks` (class names); never `batch/`, `sites/` or `acquire/`.

Per scene: `probability.zarr` (zarr v3 p(mine) cell grid) and its COG `probability.tif`,
`detections.parquet` (GeoParquet 1.1), plus CSV and KML for people. National:
`write_national` (the sites tables of `write_sites` with footprints, the detections,
register and protected-land tables, a GeoPackage, the p(mine) mosaic as COG and VRT, the
offline map, the report and its PDF, a STAC catalog), all described by one `RunFacts`.
Every writer creates its parent directories and writes through a temp name and
`os.replace`, so a crash never leaves a half-written file under the real name.
"""

from ._atomic import atomic_dir, atomic_path, write_text_atomic
from ._tables import (
    DETECTION_COLUMNS,
    IMPACT_RGB,
    SITE_COLUMNS,
    read_geoparquet,
    write_geoparquet,
)
from .detections import (
    coerce_detections,
    detections_from_tables,
    empty_detections,
    read_detections,
    read_detections_table,
    write_detections_csv,
    write_detections_geoparquet,
    write_detections_kml,
)
from .facts import RunFacts, SceneFacts, run_facts
from .national import NATIONAL_FILES, write_national
from .probability import (
    grid_coords,
    probability_dataset,
    read_probability_zarr,
    write_probability_zarr,
)
from .rasters import build_mosaic, scene_tile, write_probability_cog
from .report import ReportTables
from .sites import (
    SITE_FILES,
    coerce_sites,
    empty_sites,
    sites_geojson,
    summary_markdown,
    write_sites,
)

__all__ = [
    "DETECTION_COLUMNS",
    "IMPACT_RGB",
    "NATIONAL_FILES",
    "SITE_COLUMNS",
    "SITE_FILES",
    "ReportTables",
    "RunFacts",
    "SceneFacts",
    "atomic_dir",
    "atomic_path",
    "build_mosaic",
    "coerce_detections",
    "coerce_sites",
    "detections_from_tables",
    "empty_detections",
    "empty_sites",
    "grid_coords",
    "probability_dataset",
    "read_detections",
    "read_detections_table",
    "read_geoparquet",
    "read_probability_zarr",
    "run_facts",
    "scene_tile",
    "sites_geojson",
    "summary_markdown",
    "write_detections_csv",
    "write_detections_geoparquet",
    "write_detections_kml",
    "write_geoparquet",
    "write_national",
    "write_probability_cog",
    "write_probability_zarr",
    "write_sites",
    "write_text_atomic",
]
