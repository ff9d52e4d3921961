"""What a reader of the national outputs must know about the run that made them.

`RunFacts` is built once by the reduce (from run.json, the shards and the model cards) and
rendered by the map, the report, summary.md, the KML and the STAC catalog, so they all say
the same thing, including whether the bundled SYNTHETIC demo models or imagery were used.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger(__name__)

SYNTHETIC_WARNING = (
    "SYNTHETIC: this run used the bundled demo models, which were trained on synthetic "
    "scenes that minescan draws itself, not on real Sentinel-2 imagery. Its sites show that "
    "the pipeline works end to end; they are not evidence about real mines. Do not use them "
    "for enforcement or any decision."
)
SYNTHETIC_IMAGERY_WARNING = (
    "SYNTHETIC imagery: the scenes of this run were synthesised by minescan (planted mines "
    "and look-alikes), not acquired from Sentinel-2."
)


@dataclass(frozen=True)
class SceneFacts:
    """One scene of the manifest: where it is (EPSG:4326) and whether its shard is committed.

    `data` is the shard's data directory relative to the run root (None when missing).
    """

    scene_id: str
    bounds: tuple[float, float, float, float] | None  # west, south, east, north
    committed: bool
    data: str | None = None


@dataclass(frozen=True)
class ModelFacts:
    """A model as the report shows it: what it is, how it was evaluated, whether it is synthetic."""

    kind: str
    ref: str
    synthetic: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFacts:
    title: str
    run: str
    aoi: str
    period: str | None
    imagery: str
    scenes: tuple[SceneFacts, ...]
    models: tuple[ModelFacts, ...]
    synthetic_imagery: bool = False
    link_m: float | None = None
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def synthetic_models(self) -> bool:
        return any(model.synthetic for model in self.models)

    @property
    def synthetic(self) -> bool:
        return self.synthetic_models or self.synthetic_imagery

    @property
    def warnings(self) -> tuple[str, ...]:
        """The boxed warnings every output repeats, most serious first."""
        return tuple(
            text
            for text, applies in ((SYNTHETIC_WARNING, self.synthetic_models),
                                  (SYNTHETIC_IMAGERY_WARNING, self.synthetic_imagery))
            if applies
        )

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(scene.scene_id for scene in self.scenes if not scene.committed)

    @property
    def display_title(self) -> str:
        return f"SYNTHETIC — {self.title}" if self.synthetic else self.title


def run_facts(
    record: dict[str, Any], shards: dict[str, str], *, title: str, link_m: float | None = None
) -> RunFacts:
    """Facts of a run from its run.json `record` and `shards` ({committed scene id: its data
    directory relative to the run}); model cards are read from where run.json says."""
    manifest = record.get("manifest", {})
    source = manifest.get("source") or {}
    scenes = tuple(
        SceneFacts(
            scene_id=entry["id"],
            bounds=_bounds(entry),
            committed=entry["id"] in shards,
            data=shards.get(entry["id"]),
        )
        for entry in manifest.get("scenes", [])
    )
    models = tuple(_model_facts(kind, pinned) for kind, pinned in sorted(record.get("models", {}).items()))
    return RunFacts(
        title=title,
        run=str(record.get("run", "")),
        aoi=str(source.get("aoi") or _aoi_text(scenes)),
        period=_period(source),
        imagery=str(source.get("sensor") or "not recorded in the manifest"),
        scenes=scenes,
        models=models,
        synthetic_imagery=bool(source.get("synthetic", False)),
        link_m=link_m,
    )


def _bounds(entry: dict[str, Any]) -> tuple[float, float, float, float] | None:
    if entry.get("bounds"):
        return tuple(float(v) for v in entry["bounds"])  # type: ignore[return-value]
    transform, width, height = entry.get("transform"), entry.get("width"), entry.get("height")
    if not (transform and width and height):
        return None
    a, _, c, _, e, f = transform
    xs, ys = (c, c + a * width), (f, f + e * height)
    return (min(xs), min(ys), max(xs), max(ys))


def _aoi_text(scenes: tuple[SceneFacts, ...]) -> str:
    boxes = [scene.bounds for scene in scenes if scene.bounds is not None]
    if not boxes:
        return "not recorded (scenes without a grid)"
    west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
    east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return f"the scenes' extent, {west:.3f}° to {east:.3f}° E, {south:.3f}° to {north:.3f}° N"


def _period(source: dict[str, Any]) -> str | None:
    if source.get("start") and source.get("end"):
        return f"{source['start']} to {source['end']} (end exclusive), per-pixel median composite"
    if source.get("first_year") and source.get("last_year"):
        return f"{source['first_year']}–{source['last_year']}"
    return None


def _model_facts(kind: str, pinned: dict[str, Any]) -> ModelFacts:
    from ..models.bundled import is_bundled_demo

    card = _card(pinned.get("path"))
    return ModelFacts(
        kind=kind,
        ref=str(pinned.get("ref", "")),
        synthetic=is_bundled_demo(str(pinned.get("sha256", ""))),
        metrics=dict(card.get("metrics", {})),
        training=_training_summary(card.get("training", {})),
    )


def _card(path: str | None) -> dict[str, Any]:
    """The model card at `path` as a plain dict; {} (logged) when it cannot be read, since
    run.json already pinned the model and the reduce must not fail on a moved directory."""
    from .. import storage
    from ..models.card import CARD_FILE

    if not path:
        return {}
    try:
        return json.loads(storage.read_text(storage.join(path, CARD_FILE)))
    except (OSError, ValueError, storage.NotFoundError) as exc:
        log.warning("model card unreadable; the report omits its figures", extra={"path": path, "error": str(exc)})
        return {}


def _training_summary(training: dict[str, Any]) -> dict[str, Any]:
    data = training.get("data", {}) if isinstance(training, dict) else {}
    return {key: data[key] for key in ("n_chips", "counts", "chip_size") if key in data}
