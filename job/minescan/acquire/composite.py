"""Earth Engine image graphs: the Sentinel-2 median composite and the Landsat annual mosaics.

Pure graph construction: nothing here talks to a server, so every function runs inside
`session.offline()` and its result can be serialised and checked in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from ..errors import InputError
from .config import CLOUD_SCORE_PLUS, CompositeConfig, LandsatConfig

if TYPE_CHECKING:
    import ee

#: Landsat mosaic bands, in file order (MapBiomas mining ATBD, Col. 9, §2; docs/ARCHITECTURE.md, "The time series")
LANDSAT_BANDS = ("swir1", "nir", "red", "mndwi", "ndvi", "ndsi")


@dataclass(frozen=True, slots=True)
class LandsatSensor:
    """One Landsat Collection 2 Tier 1 TOA collection and its names for the bands we use."""

    collection: str
    green: str
    red: str
    nir: str
    swir1: str
    first_year: int
    last_year: int


#: years each sensor delivered Tier 1 scenes (L7 kept flying with SLC-off stripes, which
#: the median fills from other dates and sensors)
LANDSAT_SENSORS: dict[str, LandsatSensor] = {
    "LT05": LandsatSensor("LANDSAT/LT05/C02/T1_TOA", "B2", "B3", "B4", "B5", 1984, 2012),
    "LE07": LandsatSensor("LANDSAT/LE07/C02/T1_TOA", "B2", "B3", "B4", "B5", 1999, 2024),
    "LC08": LandsatSensor("LANDSAT/LC08/C02/T1_TOA", "B3", "B4", "B5", "B6", 2013, 9999),
    "LC09": LandsatSensor("LANDSAT/LC09/C02/T1_TOA", "B3", "B4", "B5", "B6", 2021, 9999),
}


def bits_mask(bits: tuple[int, ...]) -> int:
    """The integer with `bits` set: one bitwiseAnd tests them all."""
    return sum(1 << b for b in set(bits))


def s2_composite(cfg: CompositeConfig, region: ee.Geometry | None = None) -> ee.Image:
    """Median of the cloud-masked granules, the configured bands, uint16.

    L1C digital numbers are already reflectance × 10000, so the median is only cast back.
    """
    import ee

    granules = (
        ee.ImageCollection(cfg.collection)
        .filterDate(cfg.start.isoformat(), cfg.end.isoformat())
        .filter(ee.Filter.lte("CLOUDY_PIXEL_PERCENTAGE", cfg.max_cloud_pct))
    )
    if region is not None:
        granules = granules.filterBounds(region)
    if cfg.cloud_score_plus:
        granules = granules.linkCollection(ee.ImageCollection(CLOUD_SCORE_PLUS), [cfg.cs_band])
    masked = granules.map(lambda image: _mask_s2(image, cfg))
    return masked.select(list(cfg.bands)).median().toUint16()


def _mask_s2(image: ee.Image, cfg: CompositeConfig) -> ee.Image:
    clear = image.select("QA60").bitwiseAnd(bits_mask(cfg.qa60_bits)).eq(0)
    if cfg.cloud_score_plus:
        clear = clear.And(image.select(cfg.cs_band).gte(cfg.cs_threshold))
    return image.updateMask(clear)


def landsat_mosaic(year: int, cfg: LandsatConfig, region: ee.Geometry | None = None) -> ee.Image:
    """The year's (1 Jan – 31 Dec) median TOA mosaic: SWIR1, NIR, Red, MNDWI, NDVI, NDSI, float32.

    MNDWI = (G − SWIR1)/(G + SWIR1), NDVI = (NIR − R)/(NIR + R), NDSI = (SWIR1 − NIR)/(SWIR1 + NIR).
    """
    import ee

    sensors = [LANDSAT_SENSORS[s] for s in cfg.sensors
               if LANDSAT_SENSORS[s].first_year <= year <= LANDSAT_SENSORS[s].last_year]
    if not sensors:
        raise InputError(f"none of the sensors {list(cfg.sensors)} flew in {year}")
    start, end = date(year, 1, 1).isoformat(), date(year + 1, 1, 1).isoformat()
    merged = None
    for sensor in sensors:
        scenes = ee.ImageCollection(sensor.collection).filterDate(start, end)
        if region is not None:
            scenes = scenes.filterBounds(region)
        common = scenes.map(lambda image, s=sensor: _mask_landsat(image, s, cfg.qa_bits))
        merged = common if merged is None else merged.merge(common)
    median = merged.median()
    mndwi = median.normalizedDifference(["green", "swir1"]).rename("mndwi")
    ndvi = median.normalizedDifference(["nir", "red"]).rename("ndvi")
    ndsi = median.normalizedDifference(["swir1", "nir"]).rename("ndsi")
    return median.select(["swir1", "nir", "red"]).addBands([mndwi, ndvi, ndsi]).toFloat()


def _mask_landsat(image: ee.Image, sensor: LandsatSensor, bits: tuple[int, ...]) -> ee.Image:
    clear = image.select("QA_PIXEL").bitwiseAnd(bits_mask(bits)).eq(0)
    return (
        image.updateMask(clear)
        .select([sensor.green, sensor.red, sensor.nir, sensor.swir1], ["green", "red", "nir", "swir1"])
    )
