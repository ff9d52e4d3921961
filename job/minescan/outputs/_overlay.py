"""The p(mine) mosaic as a picture: a PNG in Web Mercator for the map, a colour ramp for legends.

Leaflet stretches an image overlay linearly between its corner latitudes, which is only
right for an image in Web Mercator; so the mosaic is reprojected to EPSG:3857 first
(a country spans tens of degrees of latitude, where the difference is kilometres).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np

#: matplotlib colour map of p(mine), shared by the map overlay, its legend and the report
COLORMAP = "inferno"
#: largest edge of the overlay picture in pixels (the page embeds it)
MAX_OVERLAY_PX = 2048


@dataclass(frozen=True)
class Overlay:
    png: bytes
    south: float
    west: float
    north: float
    east: float


def rgba(p_mine: np.ndarray) -> np.ndarray:
    """(rows, cols, 4) uint8 colours of p(mine): NaN transparent, low values faint, so the
    outlines under a forest of near-zero cells stay visible."""
    from matplotlib import colormaps

    values = np.nan_to_num(p_mine, nan=0.0)
    colours = colormaps[COLORMAP](values)
    colours[..., 3] = np.where(np.isnan(p_mine), 0.0, 0.15 + 0.75 * np.clip(values, 0, 1))
    return (colours * 255).round().astype(np.uint8)


def ramp_css(stops: int = 6) -> str:
    """A CSS linear-gradient of the colour map from p = 0 to 1."""
    from matplotlib import colormaps

    cmap = colormaps[COLORMAP]
    parts = []
    for k in range(stops):
        r, g, b, _ = (np.array(cmap(k / (stops - 1))) * 255).round().astype(int)
        parts.append(f"rgb({r},{g},{b}) {100 * k / (stops - 1):.0f}%")
    return f"linear-gradient(to right, {', '.join(parts)})"


def probability_overlay(mosaic: str | os.PathLike[str], max_px: int = MAX_OVERLAY_PX) -> Overlay:
    """The mosaic COG as a Web Mercator PNG at most `max_px` on a side (read from its
    overviews, so memory stays small for a country), with its lat/lon bounds."""
    import rasterio
    from affine import Affine
    from matplotlib import image
    from rasterio.enums import Resampling
    from rasterio.warp import calculate_default_transform, reproject, transform_bounds

    with rasterio.open(mosaic) as src:
        scale = max(1.0, max(src.width, src.height) / max_px)
        shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale)))
        grid = src.read(1, out_shape=shape, resampling=Resampling.average, masked=False)
        src_transform = src.transform @ Affine.scale(src.width / shape[1], src.height / shape[0])
        crs = src.crs
        bounds = src.bounds
    dst_transform, width, height = calculate_default_transform(
        crs, "EPSG:3857", shape[1], shape[0], *bounds, resolution=None
    )
    mercator = np.full((height, width), np.nan, dtype=np.float32)
    reproject(
        grid, mercator, src_transform=src_transform, src_crs=crs, dst_transform=dst_transform,
        dst_crs="EPSG:3857", src_nodata=np.nan, dst_nodata=np.nan, resampling=Resampling.nearest,
    )
    west, north = dst_transform @ (0, 0)
    east, south = dst_transform @ (width, height)
    lon0, lat0, lon1, lat1 = transform_bounds("EPSG:3857", "EPSG:4326", west, south, east, north)
    buffer = io.BytesIO()
    image.imsave(buffer, rgba(mercator), format="png")
    return Overlay(png=buffer.getvalue(), south=lat0, west=lon0, north=lat1, east=lon1)
