"""Synthetic Sentinel-2 L1C scenes with planted mines, tailings dams and their look-alikes.

No public 12-band imagery of mines exists (see the shared data README), so the demo, the
tests, the benchmarks and the demo models all run on scenes made here. A scene is planned
first (pure, cheap: a river, object polygons and the paint primitives that draw them, plus
low-resolution noise fields), then rendered block by block: every block takes its pixels
from the plan and from an RNG seeded by (seed, block), so a 9216² × 12 scene never exists
as one array and the bytes do not depend on how many blocks are in memory at once.

Radiometry: L1C top-of-atmosphere reflectance × 10000 as uint16, from the per-band table
`SPECTRA` (visible values calibrated against the real L1C tailings scenes in the shared
data). 20 m and 60 m bands are rendered at their own resolution and repeated to 10 m, as an
Earth Engine export at 10 m does with nearest-neighbour resampling.

Truth: targets (open pits, garimpo, tailings dams: the classes the paper calls mine or dam)
and look-alikes (water-supply dams and river banks, the paper's false positives, plus towns
and bare agricultural soil, the hard negatives) as `TruthObject`s, written as GeoJSON.

The package follows the scene's life: `kinds` (materials, spectra, object kinds, truth
records), `plan` (where everything goes), `render` (pixels, block by block), `truth`
(GeoJSON in and out) and `chips` (training chips cut from scenes). It imports only the
package's shared facts (`bands`, `errors`, `outputs`), never the scan or the batch job.
"""

from .chips import (
    sample_discovery_chips,
    sample_impact_patches,
    write_chip_folders,
    write_chip_set,
)
from .kinds import (
    KINDS,
    MAX_OBJECT_PX,
    MIN_OBJECT_PX,
    SPECTRA,
    SPECTRA_BANDS,
    TARGET_EDGE_MARGIN,
    ChipInfo,
    ObjectKind,
    SceneTruth,
    TruthObject,
)
from .plan import default_counts, scene_transform
from .render import synthesize_scene
from .truth import (
    load_scene_truth,
    make_training_scenes,
    read_truth_geojson,
    write_truth_geojson,
)

__all__ = [
    "KINDS", "MAX_OBJECT_PX", "MIN_OBJECT_PX", "SPECTRA", "SPECTRA_BANDS", "TARGET_EDGE_MARGIN",
    "ChipInfo", "ObjectKind", "SceneTruth", "TruthObject", "default_counts", "load_scene_truth",
    "make_training_scenes", "read_truth_geojson", "sample_discovery_chips", "sample_impact_patches",
    "scene_transform", "synthesize_scene", "write_chip_folders", "write_chip_set",
    "write_truth_geojson",
]
