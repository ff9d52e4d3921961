"""Output writers and readers, all to local paths; the batch room commits and uploads them.

The formats are the data contracts of docs/ARCHITECTURE.md. May import the shared facts
and `models.networks` (class names); never `batch/`, `sites/` or `acquire/`.

Per scene: `probability.zarr` (zarr v3 p(mine) cell grid) and `detections.parquet`
(GeoParquet 1.1), plus CSV and KML for people. National: `write_sites` (GeoParquet,
GeoJSON, KML, CSV, an offline HTML map and a Markdown summary). Every writer creates its
parent directories and writes through a temp name and `os.replace`, so a crash never
leaves a half-written file under the real name.
"""

from ._atomic import atomic_dir, atomic_path, write_text_atomic
from ._tables import DETECTION_COLUMNS, IMPACT_RGB, SITE_COLUMNS
from .detections import (
    coerce_detections,
    empty_detections,
    read_detections,
    write_detections_csv,
    write_detections_geoparquet,
    write_detections_kml,
)
from .probability import (
    grid_coords,
    probability_dataset,
    read_probability_zarr,
    write_probability_zarr,
)
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
    "SITE_COLUMNS",
    "SITE_FILES",
    "atomic_dir",
    "atomic_path",
    "coerce_detections",
    "coerce_sites",
    "empty_detections",
    "empty_sites",
    "grid_coords",
    "probability_dataset",
    "read_detections",
    "read_probability_zarr",
    "sites_geojson",
    "summary_markdown",
    "write_detections_csv",
    "write_detections_geoparquet",
    "write_detections_kml",
    "write_probability_zarr",
    "write_sites",
    "write_text_atomic",
]
