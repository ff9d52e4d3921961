"""Stable site ids: named after a place, never after a ranking.

A site's id names the national grid cell of its north-westernmost detection cell (the
smallest national row, then the smallest column; `footprints.national_cells`):
`S{row:05d}-{col:06d}`. For scenes on the national Sentinel-2 grid that is exactly the
cell's `global_row`/`global_col`; the id can be turned back into a place with
`cell_centre_lonlat`.

So the same detections give the same ids in every run, whatever other scenes the run
holds, whichever overlapping scene supplied a cell, and in whatever order shards are read.
What changes an id, by design:

* **growth to the north (or west in the same row)**: the site's north-westernmost cell is
  a new one, so is its id. `minescan diff` still pairs the two by footprint overlap, and
  `--reviews` carries a verdict by place when the id is gone.
* **merge**: two sites that grow into one take the id of the north-western one; the
  other id disappears (the diff lists both before-ids against the merged site).
* **split**: the part holding the old north-westernmost cell keeps the id; the other
  parts get ids of their own north-westernmost cells.

Two sites cannot share a cell (cells are deduplicated and linking is longer than a cell),
so ids are unique; should a hand-made run with a linking distance below one cell ever
produce two sites in one national cell, the second gets a `-2` suffix.
"""

from __future__ import annotations

import numpy as np

from ..batch.grid import S2_GRID
from ..scan import geometry
from .footprints import national_cells

_COL_SPAN = 1 << 24  # more columns than the national grid has (148,410)


def stable_ids(lon: np.ndarray, lat: np.ndarray, site: np.ndarray, n_sites: int) -> list[str]:
    """Id of each site 0..n_sites-1 from its cells' centres (`site` per cell)."""
    row, col = national_cells(lon, lat)
    key = np.full(n_sites, np.iinfo(np.int64).max)
    np.minimum.at(key, site, row * _COL_SPAN + col)
    ids: list[str] = []
    seen: dict[str, int] = {}
    for k in key:
        base = f"S{k // _COL_SPAN:05d}-{k % _COL_SPAN:06d}"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def cell_centre_lonlat(site_id: str) -> tuple[float, float]:
    """lon, lat of the centre of the national cell a site id names."""
    row, col = (int(part) for part in site_id.lstrip("S").split("-")[:2])
    centre = geometry.CENTRE_OFFSET + 0.5
    return (S2_GRID.lon(col * geometry.STRIDE + centre), S2_GRID.lat(row * geometry.STRIDE + centre))
