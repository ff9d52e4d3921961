"""The global scene grid: where every exported scene sits, derived once and tested alone.

One pixel grid covers the globe in EPSG:4326, origin at (-180°, 90°), PIXEL_DEG degrees
per pixel (10 m of latitude). A geographic grid rather than UTM because Brazil spans eight
UTM zones: scenes from two zones would have pixel grids that never coincide, so the scan's
output cells of neighbouring scenes could not be matched. It is also what the paper did
(its chips are 0.018° × 0.018° for 201 px). East-west pixels shrink with cos(latitude)
(8.7 m at 30° S), a slight oversampling of the 10 m bands.

Scenes are laid on that grid so overlapping scenes compute the *same* national cells:

* origins on multiples of the discovery network's stride (27 px), so a scene's output
  cell i is global cell origin/27 + i in every scene that computes it;
* a step of 9207 px = 341 × 27, the multiple of 27 nearest the paper's 9216-px scenes;
* an overlap of 216 px = 8 × 27 ≥ the 215-px receptive field. It is exactly the halo the
  exact sub-tiling needs (`geometry.HALO_BEFORE_UNITS + HALO_AFTER_UNITS - 1` units), so a
  9423-px scene computes its local cells 1..341 with their whole receptive field inside
  the scene; those 341 cells per axis are the scene's *owned* cells and the owned cells
  of all scenes tile the global cell grid exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..bands import PIXEL_DEG
from ..scan import geometry

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

GRID_CRS = "EPSG:4326"
ORIGIN_LON = -180.0
ORIGIN_LAT = 90.0
#: scenes overlap by this many pixels: 8 strides, ≥ the 215-px receptive field
OVERLAP_PX = (geometry.HALO_BEFORE_UNITS + geometry.HALO_AFTER_UNITS - 1) * geometry.STRIDE
#: distance between neighbouring scene origins: 341 strides, nearest multiple of 27 to 9216
SCENE_STEP_PX = 341 * geometry.STRIDE
SCENE_PX = SCENE_STEP_PX + OVERLAP_PX
#: a scene's first owned local cell: cell 0 sees zero padding at the scene's edge
OWNED_CELL_OFFSET = geometry.HALO_BEFORE_UNITS


@dataclass(frozen=True, slots=True)
class Bounds:
    """A lon/lat box in degrees."""

    west: float
    south: float
    east: float
    north: float


@dataclass(frozen=True, slots=True)
class GridSpec:
    """A regular grid of square scenes on a global lon/lat pixel grid."""

    pixel_deg: float = PIXEL_DEG
    step_px: int = SCENE_STEP_PX
    size_px: int = SCENE_PX
    #: scene origins are multiples of this (the network's output stride)
    align_px: int = geometry.STRIDE
    crs: str = GRID_CRS
    origin_lon: float = ORIGIN_LON
    origin_lat: float = ORIGIN_LAT

    def __post_init__(self) -> None:
        if self.step_px % self.align_px or self.size_px < self.step_px:
            raise ValueError(f"grid step {self.step_px} must be a multiple of {self.align_px} "
                             f"and no larger than the scene size {self.size_px}")

    @property
    def overlap_px(self) -> int:
        return self.size_px - self.step_px

    @property
    def n_rows(self) -> int:
        return math.ceil(180.0 / self.pixel_deg / self.step_px)

    @property
    def n_cols(self) -> int:
        return math.ceil(360.0 / self.pixel_deg / self.step_px)

    def lon(self, pixel_col: float) -> float:
        return self.origin_lon + pixel_col * self.pixel_deg

    def lat(self, pixel_row: float) -> float:
        return self.origin_lat - pixel_row * self.pixel_deg

    def pixel_col(self, lon: float) -> float:
        """Fractional global pixel column of a longitude."""
        return (lon - self.origin_lon) / self.pixel_deg

    def pixel_row(self, lat: float) -> float:
        """Fractional global pixel row of a latitude."""
        return (self.origin_lat - lat) / self.pixel_deg


#: Sentinel-2 scenes at 10 m: the grid the map job scans
S2_GRID = GridSpec()
#: Landsat mosaics at 30 m for the MapBiomas U-Net: tiles of 16 × 256-px windows,
#: overlapping by one 256-px window step so every window centre is kept once
LANDSAT_GRID = GridSpec(pixel_deg=3 * PIXEL_DEG, step_px=15 * 256, size_px=16 * 256, align_px=256)


@dataclass(frozen=True, slots=True)
class Window:
    """A square of `size` global pixels whose top-left pixel is (`pixel_row`, `pixel_col`)."""

    pixel_row: int
    pixel_col: int
    size: int
    grid: GridSpec

    @property
    def bounds(self) -> Bounds:
        g = self.grid
        return Bounds(
            west=g.lon(self.pixel_col),
            south=g.lat(self.pixel_row + self.size),
            east=g.lon(self.pixel_col + self.size),
            north=g.lat(self.pixel_row),
        )

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """Earth Engine `crsTransform` order: xScale, xShear, xOffset, yShear, yScale, yOffset
        (the first six numbers of a rasterio Affine)."""
        g = self.grid
        return (g.pixel_deg, 0.0, g.lon(self.pixel_col), 0.0, -g.pixel_deg, g.lat(self.pixel_row))


@dataclass(frozen=True, slots=True)
class Scene:
    """Scene (`row`, `col`) of a grid and its pixel window."""

    row: int
    col: int
    window: Window

    @property
    def id(self) -> str:
        return scene_id(self.row, self.col)

    @property
    def grid(self) -> GridSpec:
        return self.window.grid

    @property
    def pixel_row(self) -> int:
        return self.window.pixel_row

    @property
    def pixel_col(self) -> int:
        return self.window.pixel_col

    @property
    def size(self) -> int:
        return self.window.size

    @property
    def bounds(self) -> Bounds:
        return self.window.bounds

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        return self.window.transform


def scene_id(row: int, col: int) -> str:
    """Stable id of a scene of the grid, sortable row-major."""
    return f"r{row:04d}c{col:04d}"


def scene(row: int, col: int, grid: GridSpec = S2_GRID) -> Scene:
    if not (0 <= row < grid.n_rows and 0 <= col < grid.n_cols):
        raise ValueError(f"scene ({row}, {col}) is outside the {grid.n_rows}×{grid.n_cols} grid")
    return Scene(row, col, Window(row * grid.step_px, col * grid.step_px, grid.size_px, grid))


def owned_bounds(s: Scene) -> Bounds:
    """The area whose cells this scene owns (S2 grid): the centre pixels of its owned cells
    ± half a stride. Owned areas of neighbouring scenes abut without overlap."""
    g = s.grid
    first_centre = geometry.centre_pixel(OWNED_CELL_OFFSET)
    half = g.align_px / 2.0
    top = s.pixel_row + first_centre - half
    left = s.pixel_col + first_centre - half
    return Bounds(
        west=g.lon(left),
        south=g.lat(top + g.step_px),
        east=g.lon(left + g.step_px),
        north=g.lat(top),
    )


def core_bounds(s: Scene) -> Bounds:
    """The scene's first `step` pixels per axis: the area it is responsible for (Landsat)."""
    g = s.grid
    return Bounds(
        west=g.lon(s.pixel_col),
        south=g.lat(s.pixel_row + g.step_px),
        east=g.lon(s.pixel_col + g.step_px),
        north=g.lat(s.pixel_row),
    )


def scenes_for_aoi(aoi: BaseGeometry, grid: GridSpec = S2_GRID) -> list[Scene]:
    """Every scene whose responsibility area intersects `aoi` (lon/lat), row-major.

    Responsibility is the owned-cell area on the Sentinel-2 grid (so every national cell in
    the AOI is computed exactly by one listed scene) and the core area on other grids.
    """
    from shapely import box, prepare

    prepare(aoi)
    area_of = owned_bounds if grid.align_px == geometry.STRIDE else core_bounds
    out = []
    for s in _candidates(aoi.bounds, grid):
        b = area_of(s)
        if aoi.intersects(box(b.west, b.south, b.east, b.north)):
            out.append(s)
    return out


def _candidates(bounds: tuple[float, float, float, float], grid: GridSpec) -> Iterator[Scene]:
    """Scenes that could touch a lon/lat box (one scene of margin: owned areas are shifted)."""
    west, south, east, north = bounds
    r0 = max(0, math.floor(grid.pixel_row(north) / grid.step_px) - 1)
    r1 = min(grid.n_rows - 1, math.floor(grid.pixel_row(south) / grid.step_px) + 1)
    c0 = max(0, math.floor(grid.pixel_col(west) / grid.step_px) - 1)
    c1 = min(grid.n_cols - 1, math.floor(grid.pixel_col(east) / grid.step_px) + 1)
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            yield scene(r, c, grid)


@dataclass(frozen=True, slots=True)
class Pixel:
    """A global pixel of a grid."""

    row: int
    col: int


def point_pixel(lon: float, lat: float, grid: GridSpec = S2_GRID) -> Pixel:
    """The global pixel containing a point."""
    return Pixel(row=math.floor(grid.pixel_row(lat)), col=math.floor(grid.pixel_col(lon)))


def centred_window(lon: float, lat: float, size: int, grid: GridSpec = S2_GRID) -> Window:
    """The `size`-px square (odd) centred on the global pixel that contains the point."""
    centre = point_pixel(lon, lat, grid)
    half = size // 2
    return Window(centre.row - half, centre.col - half, size, grid)
