"""minescan: surface mines and tailings dams in Sentinel-2 imagery.

The package is laid out as the pipeline runs (docs/ARCHITECTURE.md, "Rooms"):

    acquire/   Earth Engine exports: Sentinel-2 scenes, training chips, Landsat mosaics
    scan/      one scene → p(mine) per cell and detections (geometry, networks run, scene checks)
    batch/     runs: manifest and scene grid, run/shard layout, commits, map and reduce
    sites/     everything after detection: dedupe, clustering into sites
    outputs/   file writers (zarr, GeoParquet, CSV, KML, HTML, Markdown)
    models/    the networks, model directories and their cards, the bundled demo models
    training/  training and evaluation; synth/ synthetic scenes; cli/ the `minescan` verbs

and shared facts at the top: errors (exit codes), log, storage (local and gs:// I/O),
validation, bands, ores, points. Imports flow one way: cli → batch → scan/sites/outputs →
models → shared facts; nothing but the cli imports acquire/.

Importing the package is cheap on purpose: TensorFlow, rasterio and friends are imported
inside the functions that need them, so `minescan --help` answers instantly.
"""

__version__ = "0.1.0"
