"""Typed configuration, one model per stage, validated once and saved with the results."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..batch.manifest import GridDef
from .backends import BACKEND_CHOICES, BACKENDS


class ScanConfig(BaseModel):
    """How one scene is scanned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    discovery_model: str | None = Field(
        None, description="discovery model directory, local or gs://; None: the bundled demo model"
    )
    impact_model: str | None = Field(
        None, description="impact model directory, local or gs://; None: the bundled demo model"
    )
    registry: str | None = Field(
        None, description="model registry (local or gs://) whose `channel` names the models"
    )
    channel: str | None = Field(
        None,
        description="follow this registry channel (e.g. prod) instead of model paths; a run "
        "resolves it once, when its first scene is mapped, and run.json pins the versions",
    )
    threshold: float | None = Field(
        None, ge=0, le=1, description="p(mine) for a candidate; None: the model's (paper: 0.6)"
    )
    drop_no_ore: bool = Field(
        True, description="drop candidates whose impact class is no_ore (paper); else keep and flag"
    )
    memory_budget_mb: int = Field(
        3200, ge=64, description="working memory for one discovery sub-tile, MiB (3200: 4 × 4 "
        "sub-tiles of the paper's 9216² scene with openvino or tensorflow)"
    )
    max_nodata_fraction: float = Field(
        0.25, ge=0, le=1, description="cells whose 201-px chip has more nodata than this are masked"
    )
    impact_batch_size: int = Field(1024, ge=1, description="patches per impact-network batch")
    backend: Literal[BACKEND_CHOICES] = Field(  # type: ignore[valid-type]
        "auto",
        description=f"who runs the networks: auto = the fastest installed, in the order {BACKENDS}; "
        "tensorflow is the reference and the GPU path",
    )
    overlap_stages: bool | None = Field(
        None, description="read and classify on their own threads while the discovery network "
        "runs; None: only where more than two cores are usable (docs/BENCHMARKS.md)"
    )
    mixed_precision: bool = Field(
        False, description="tensorflow backend only: compute in float16 (for GPUs; see docs/BENCHMARKS.md)"
    )
    input_scale: float | None = Field(
        None, gt=0, description="multiply pixel values by this before the networks (e.g. 10000 "
        "for reflectance 0–1 where the models learnt reflectance×10000); None: the file's units"
    )
    max_scene_pixels: int = Field(
        400_000_000, ge=201 * 201, description="refuse, before reading, a scene declaring more "
        "pixels than this (20,000² by default; a paper scene is 9,423²)"
    )
    grid: GridDef | None = Field(
        None,
        description="the manifest's global grid, for national cell indices (set by `map`); "
        "None: scene-local cells only",
    )

    @model_validator(mode="after")
    def _models_from_paths_or_a_channel(self) -> ScanConfig:
        if (self.registry is None) != (self.channel is None):
            raise ValueError("registry and channel go together: set both, or neither")
        if self.channel is not None and (self.discovery_model or self.impact_model):
            raise ValueError(
                "a config that follows a channel names no model directories: "
                "drop discovery_model/impact_model, or drop registry/channel"
            )
        return self
