"""Typed configuration of the acquisition stages, validated once.

Defaults are the paper's (Balaniuk et al. 2020, §3.1) and the MapBiomas ATBD's (§2);
docs/ARCHITECTURE.md, "Acquisition", says where they deviate from the authors' code. A bad
value raises `InputError` with one line that names the field, through `validated()`.
"""

from __future__ import annotations

from datetime import date
from typing import Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ..bands import DEFAULT_BANDS, check_bands
from ..validation import validate

S2_COLLECTION = "COPERNICUS/S2_HARMONIZED"
CLOUD_SCORE_PLUS = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
#: QA60 bit 10 opaque clouds, bit 11 cirrus (the authors' notebook tests bits 3 and 5,
#: which are not QA60 flags)
QA60_CLOUD_BITS = (10, 11)
#: QA_PIXEL bit 1 dilated cloud, 3 cloud, 4 cloud shadow (MapBiomas mining ATBD, Col. 9, §2.2)
QA_PIXEL_CLOUD_BITS = (1, 3, 4)

M = TypeVar("M", bound=BaseModel)


class CompositeConfig(BaseModel):
    """The Sentinel-2 median composite (Balaniuk et al. 2020, Figure 2, steps 1–2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    collection: str = Field(default=S2_COLLECTION, description="Earth Engine L1C collection id")
    start: date = Field(default=date(2018, 1, 1), description="first day, inclusive")
    end: date = Field(default=date(2020, 1, 1), description="last day, exclusive")
    max_cloud_pct: float = Field(
        default=20.0, ge=0, le=100, description="keep granules with CLOUDY_PIXEL_PERCENTAGE ≤ this"
    )
    qa60_bits: tuple[int, ...] = Field(
        default=QA60_CLOUD_BITS, description="QA60 bits whose set pixels are masked before the median"
    )
    cloud_score_plus: bool = Field(default=False, description="also mask with Cloud Score+")
    cs_band: Literal["cs", "cs_cdf"] = Field(default="cs_cdf", description="Cloud Score+ band")
    cs_threshold: float = Field(default=0.6, ge=0, le=1, description="keep pixels with cs_band ≥ this")
    bands: tuple[str, ...] = Field(default=DEFAULT_BANDS, description="output bands, in file order")

    @field_validator("bands")
    @classmethod
    def _known_bands(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("give at least one band")
        return check_bands(v)

    @field_validator("qa60_bits")
    @classmethod
    def _bits_in_range(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= b < 16 for b in v):
            raise ValueError(f"QA60 is a 16-bit band: bits {v} must be in 0..15")
        return v

    @model_validator(mode="after")
    def _dates_in_order(self) -> "CompositeConfig":
        if self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        if self.start < date(2015, 6, 23):
            raise ValueError(f"start {self.start} is before Sentinel-2A's launch (2015-06-23)")
        return self


class ExportConfig(BaseModel):
    """Where and how Earth Engine writes the files, and how the runner drives the tasks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    destination: str = Field(description="gs://bucket/prefix the files go under")
    max_concurrent: int = Field(default=10, ge=1, le=3000, description="tasks submitted and not finished at once")
    poll_seconds: float = Field(default=30.0, ge=0, description="seconds between status polls")
    max_retries: int = Field(default=2, ge=0, description="resubmissions of a failed task")
    priority: int | None = Field(default=None, ge=0, le=9999, description="Earth Engine task priority")

    @field_validator("destination")
    @classmethod
    def _gcs_uri(cls, v: str) -> str:
        if not v.startswith("gs://") or len(v) <= len("gs://") or v[len("gs://")] == "/":
            raise ValueError(f"destination {v!r} must be gs://bucket[/prefix]: Earth Engine exports to Cloud Storage")
        return v.rstrip("/")

    @property
    def bucket(self) -> str:
        return self.destination[len("gs://"):].split("/", 1)[0]

    @property
    def prefix(self) -> str:
        """Object-name prefix inside the bucket, '' or ending with '/'."""
        parts = self.destination[len("gs://"):].split("/", 1)
        return parts[1] + "/" if len(parts) == 2 and parts[1] else ""


class ChipConfig(BaseModel):
    """Training chips around labelled points (Balaniuk et al. 2020, §3.1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sizes: tuple[int, ...] = Field(
        default=(201, 21), description="chip edges in px: 201 (2 km, discovery) and 21 (200 m, impact)"
    )
    file_format: Literal["GeoTIFF", "TFRecord"] = Field(default="GeoTIFF", description="export format")

    @field_validator("sizes")
    @classmethod
    def _odd_sizes(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(s < 1 or s % 2 == 0 for s in v):
            raise ValueError(f"chip sizes {v} must be odd positive pixel counts (centred on the point's pixel)")
        return v


class LandsatConfig(BaseModel):
    """Annual Landsat Collection 2 Tier 1 TOA median mosaics (MapBiomas mining ATBD, Col. 9, §2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first_year: int = Field(default=1985, ge=1984, description="first calendar year")
    last_year: int = Field(default=2023, description="last calendar year, inclusive")
    qa_bits: tuple[int, ...] = Field(default=QA_PIXEL_CLOUD_BITS, description="QA_PIXEL bits masked")
    sensors: tuple[Literal["LT05", "LE07", "LC08", "LC09"], ...] = Field(
        default=("LT05", "LE07", "LC08", "LC09"),
        description="sensors merged where they flew in a year",
    )

    @model_validator(mode="after")
    def _years_in_order(self) -> "LandsatConfig":
        if self.first_year > self.last_year:
            raise ValueError(f"first year {self.first_year} is after last year {self.last_year}")
        if not self.sensors:
            raise ValueError("give at least one Landsat sensor")
        return self


def validated(model: type[M], **values: object) -> M:
    """Build `model` from `values`, turning a validation failure into a one-line InputError."""
    return validate(model, values, f"{model.__name__} is invalid")
