"""p(mine) as GeoTIFFs every GIS opens: one COG per scene, and the national mosaic.

The zarr store is the record (xarray reads it), but no GDAL that QGIS ships opens a zarr v3
store with its codecs, so each scene's grid is also written as a Cloud-Optimized GeoTIFF
(float32, NaN nodata, DEFLATE with the floating-point predictor: every GDAL build has it,
zstd is missing from some). The national mosaic stitches the scenes' zarr grids on the
global cell grid block by block with dask, so memory stays bounded by the block size,
not the country; a VRT over the scene COGs gives the same picture without a copy.

Where scenes overlap, a cell is taken from the scene that owns it (the cells of the
manifest grid's `owned_cells`, whose receptive field never saw a scene edge), and a cell
no committed scene owns (the area's rim, a missing neighbour) from any scene that has it.
"""

from __future__ import annotations

import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ._atomic import atomic_path

if TYPE_CHECKING:
    import affine

#: COG creation options shared by the scene COGs and the mosaic
COG_OPTIONS = {"compress": "DEFLATE", "predictor": "3", "blocksize": "512", "overview_resampling": "average"}
#: mosaic block edge in cells: one block of float32 is 4 MiB
MOSAIC_BLOCK = 1024
#: GDAL block cache while the mosaic is written (MiB)
GDAL_CACHE_MB = 128


@dataclass(frozen=True)
class CellWindow:
    """A rectangle of cells: first row and column, and how many of each."""

    row: int
    col: int
    rows: int
    cols: int

    def intersect(self, other: CellWindow) -> CellWindow | None:
        row, col = max(self.row, other.row), max(self.col, other.col)
        end_row = min(self.row + self.rows, other.row + other.rows)
        end_col = min(self.col + self.cols, other.col + other.cols)
        if end_row <= row or end_col <= col:
            return None
        return CellWindow(row, col, end_row - row, end_col - col)


@dataclass(frozen=True)
class MosaicTile:
    """One committed scene's p(mine) grid, placed on the global cell grid.

    `cells` is where the scene's grid lies in global cells, `owned` the part of it the
    scene owns (global cells too); `zarr` a local store, `cog` the scene COG's path as the
    VRT should name it (relative to the VRT's directory, or any path GDAL opens).
    """

    scene_id: str
    zarr: Path
    cog: str
    cells: CellWindow
    owned: CellWindow


@dataclass(frozen=True)
class Mosaic:
    cog: Path
    vrt: Path
    window: CellWindow  # the mosaic's extent in global cells
    transform: tuple[float, ...]  # a, b, c, d, e, f of the mosaic's cell transform
    crs: str


def write_probability_cog(
    path: str | os.PathLike[str], p_mine: np.ndarray, *, cell_transform: affine.Affine, crs: str
) -> None:
    """Write a (rows, cols) p(mine) grid as a COG (float32, NaN nodata) at local `path`."""
    import rasterio
    import rasterio.shutil
    from rasterio.io import MemoryFile

    grid = np.asarray(p_mine, dtype=np.float32)
    profile = {
        "driver": "GTiff", "width": grid.shape[1], "height": grid.shape[0], "count": 1,
        "dtype": "float32", "nodata": np.nan, "crs": crs, "transform": cell_transform,
    }
    with MemoryFile() as memory:
        with memory.open(**profile) as staged:
            staged.write(grid, 1)
            staged.set_band_description(1, "p_mine")
        with memory.open() as staged, atomic_path(path) as tmp:
            rasterio.shutil.copy(staged, tmp, driver="COG", **COG_OPTIONS)


def scene_tile(
    scene_id: str,
    zarr: Path,
    cog: str,
    *,
    offset: Sequence[int],
    shape: Sequence[int],
    owned_offset: int,
    owned_cells: int,
) -> MosaicTile:
    """The tile of a scene whose cell (0, 0) is global cell `offset` (its shard's
    `global_offset`), `shape` cells large, owning `owned_cells` cells per axis from local
    cell `owned_offset` (the manifest grid's `owned_cell_offset`, `owned_cells`)."""
    cells = CellWindow(int(offset[0]), int(offset[1]), int(shape[0]), int(shape[1]))
    owned = CellWindow(cells.row + owned_offset, cells.col + owned_offset, owned_cells, owned_cells)
    return MosaicTile(scene_id, Path(zarr), cog, cells, owned.intersect(cells) or CellWindow(cells.row, cells.col, 0, 0))


def mosaic_grid(tiles: Sequence[MosaicTile]) -> tuple[Any, str, CellWindow]:
    """(global cell transform, CRS, extent in global cells) of the tiles; InputError if they
    do not share one grid."""
    import xarray as xr
    from affine import Affine

    if not tiles:
        raise InputError("no committed scene on the run's grid: nothing to mosaic")
    grids: dict[tuple, tuple[Any, str]] = {}
    for tile in tiles:
        with xr.open_zarr(tile.zarr) as ds:
            local = Affine(*ds.attrs["transform"])
            crs = ds.attrs["crs"]
        origin = local @ Affine.translation(-tile.cells.col, -tile.cells.row)
        # a millionth of a cell apart is float noise, not another grid
        key = (tuple(round(v / abs(local.a), 6) for v in origin[:6]), crs)
        grids.setdefault(key, (origin, crs))
    if len(grids) != 1:
        raise InputError(f"the scenes lie on {len(grids)} different cell grids: mosaic one run's grid only")
    (origin, crs), = grids.values()
    row = min(t.cells.row for t in tiles)
    col = min(t.cells.col for t in tiles)
    end_row = max(t.cells.row + t.cells.rows for t in tiles)
    end_col = max(t.cells.col + t.cells.cols for t in tiles)
    return Affine(*origin), crs, CellWindow(row, col, end_row - row, end_col - col)


def mosaic_block(tiles: Sequence[MosaicTile], window: CellWindow, read: Any) -> np.ndarray:
    """The p(mine) cells of `window` (global cells): every tile's cells in order, then every
    tile's owned cells on top. `read(tile, local_window)` returns a tile's cells."""
    out = np.full((window.rows, window.cols), np.nan, dtype=np.float32)
    for part in ("cells", "owned"):
        for tile in tiles:
            overlap = getattr(tile, part).intersect(window)
            if overlap is None:
                continue
            local = CellWindow(overlap.row - tile.cells.row, overlap.col - tile.cells.col, overlap.rows, overlap.cols)
            values = read(tile, local)
            target = out[overlap.row - window.row:, overlap.col - window.col:][: overlap.rows, : overlap.cols]
            np.copyto(target, values, where=~np.isnan(values))
    return out


def build_mosaic(
    out_dir: str | os.PathLike[str],
    tiles: Sequence[MosaicTile],
    *,
    name: str = "p_mine_mosaic",
    block: int = MOSAIC_BLOCK,
    workers: int = 2,
) -> Mosaic:
    """Write `<name>.tif` (COG) and `<name>.vrt` (over the scene COGs) into local `out_dir`."""
    import dask
    import dask.array as da
    import rasterio
    import rasterio.shutil
    import xarray as xr
    from affine import Affine

    origin, crs, window = mosaic_grid(tiles)
    transform = origin @ Affine.translation(window.col, window.row)
    # chunks=None: lazily indexed arrays without dask, so a slice reads only its zarr chunks
    stores = {tile.scene_id: xr.open_zarr(tile.zarr, chunks=None)["p_mine"] for tile in tiles}

    def read(tile: MosaicTile, local: CellWindow) -> np.ndarray:
        cells = stores[tile.scene_id][local.row : local.row + local.rows, local.col : local.col + local.cols]
        return np.asarray(cells.values, dtype=np.float32)

    def compute_block(block_info: dict | None = None) -> np.ndarray:
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        return mosaic_block(tiles, CellWindow(window.row + r0, window.col + c0, r1 - r0, c1 - c0), read)

    chunks = tuple(_chunks(n, block) for n in (window.rows, window.cols))
    mosaic = da.map_blocks(compute_block, dtype=np.float32, chunks=chunks, meta=np.empty((0, 0), np.float32))
    out = Path(out_dir)
    cog, vrt = out / f"{name}.tif", out / f"{name}.vrt"
    staged = out / f".{name}.blocks.tif"
    profile = {
        "driver": "GTiff", "width": window.cols, "height": window.rows, "count": 1, "dtype": "float32",
        "nodata": np.nan, "crs": crs, "transform": transform, "tiled": True,
        "blockxsize": 512, "blockysize": 512, "compress": "DEFLATE", "predictor": 3, "bigtiff": "IF_SAFER",
    }
    out.mkdir(parents=True, exist_ok=True)
    # GDAL's block cache defaults to 5 % of the machine's memory; cap it so the COG copy
    # (which reads the staged blocks back to build overviews) stays small on any machine
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), rasterio.open(staged, "w", **profile) as dst:
            # the scheduler holds at most a few blocks at once: bounded memory for any country
            with dask.config.set(scheduler="threads", num_workers=workers):
                da.store(mosaic, _WindowWriter(dst), lock=threading.Lock())
            dst.set_band_description(1, "p_mine")
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), atomic_path(cog) as tmp:
            rasterio.shutil.copy(staged, tmp, driver="COG", **COG_OPTIONS)
    finally:
        staged.unlink(missing_ok=True)
        for array in stores.values():
            array.close()
    with atomic_path(vrt) as tmp:
        tmp.write_text(mosaic_vrt(tiles, window, transform, crs), encoding="utf-8")
    return Mosaic(cog=cog, vrt=vrt, window=window, transform=tuple(transform)[:6], crs=crs)


def mosaic_vrt(tiles: Sequence[MosaicTile], window: CellWindow, transform: Any, crs: str) -> str:
    """A GDAL VRT of the mosaic over the scene COGs, sources in `mosaic_block`'s order."""
    import rasterio.crs

    root = ET.Element("VRTDataset", rasterXSize=str(window.cols), rasterYSize=str(window.rows))
    ET.SubElement(root, "SRS").text = rasterio.crs.CRS.from_user_input(crs).to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in transform.to_gdal())
    band = ET.SubElement(root, "VRTRasterBand", dataType="Float32", band="1")
    ET.SubElement(band, "Description").text = "p_mine"
    ET.SubElement(band, "NoDataValue").text = "nan"
    for part in ("cells", "owned"):
        for tile in tiles:
            area = getattr(tile, part)
            source = ET.SubElement(band, "ComplexSource")
            relative = "0" if os.path.isabs(tile.cog) or "://" in tile.cog else "1"
            ET.SubElement(source, "SourceFilename", relativeToVRT=relative).text = tile.cog
            ET.SubElement(source, "SourceBand").text = "1"
            ET.SubElement(
                source, "SrcRect", xOff=str(area.col - tile.cells.col), yOff=str(area.row - tile.cells.row),
                xSize=str(area.cols), ySize=str(area.rows),
            )
            ET.SubElement(
                source, "DstRect", xOff=str(area.col - window.col), yOff=str(area.row - window.row),
                xSize=str(area.cols), ySize=str(area.rows),
            )
            # NaN cells of a later source leave the earlier source's value showing
            ET.SubElement(source, "NODATA").text = "nan"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


class _WindowWriter:
    """The `__setitem__` target `dask.array.store` writes each finished block into."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __setitem__(self, key: tuple[slice, slice], value: np.ndarray) -> None:
        from rasterio.windows import Window

        rows, cols = key
        self.dataset.write(value, 1, window=Window(cols.start, rows.start, value.shape[1], value.shape[0]))


def _chunks(n: int, block: int) -> tuple[int, ...]:
    return (block,) * (n // block) + ((n % block,) if n % block else ())
