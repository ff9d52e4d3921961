"""The scan of one scene: from a GeoTIFF to p(mine) per output cell and detections.

    geometry.py   the discovery network's geometry (stride, chip, receptive field, sub-tiles)
    scene.py      every check a scene file must pass, window reads, georeferencing
    inference.py  running the networks: seamless sub-tiles, impact patches
    scanner.py    the scene scan: tiles → p(mine) grid → impact → detections table
    config.py     ScanConfig, the scan's one config model

May import the shared facts (errors, log, bands, validation), `models/`, the table
contracts of `outputs/` and the grid contracts of `batch` (`batch.grid`, `batch.manifest`:
value objects, no I/O); never the rest of `batch/` (which commits what the scan returns)
nor `acquire/`.
"""
