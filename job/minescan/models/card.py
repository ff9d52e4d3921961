"""The model directory: a Keras model and everything needed to use it correctly.

    <model>/
      model.keras   the Keras 3 model (architecture + weights)
      model.json    `ModelCard`: kind, band list, per-band normalisation, class names,
                    threshold, training data description, metrics, SHA-256 of model.keras

Kinds: the paper's `discovery` and `impact` networks (softmax over `class_names`) and the
MapBiomas `series` U-Net (one sigmoid channel, p of the second class name, per pixel; its
`bands` are the cube's feature names).

The hash is checked before the weights are deserialised, so a truncated upload or a
swapped file fails loudly instead of scanning a country with the wrong network.
A directory is written to a temporary sibling and renamed into place, so a crash never
leaves a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ModelError
from ..storage import replace_dir, sha256_file
from ..validation import validate

if TYPE_CHECKING:
    import keras

ModelKind = Literal["discovery", "impact", "series"]

CARD_FILE = "model.json"
WEIGHTS_FILE = "model.keras"
FORMAT_VERSION = 1


class Normalization(BaseModel):
    """Per-band statistics of the training data: x' = (x − mean) / std, in input units."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mean: list[float] = Field(description="per-band mean of the training chips")
    std: list[float] = Field(description="per-band standard deviation, all > 0")

    @model_validator(mode="after")
    def _same_length_positive_std(self) -> "Normalization":
        if len(self.mean) != len(self.std):
            raise ValueError("normalization mean and std must have one value per band")
        if any(not s > 0 for s in self.std):
            raise ValueError("normalization std must be > 0 for every band")
        return self

    def scaled(self, factor: float) -> "Normalization":
        """The statistics for inputs in units `factor` times smaller: normalising x with them
        equals normalising `factor`·x with these (how `--input-scale` is applied)."""
        return Normalization(mean=[m / factor for m in self.mean], std=[s / factor for s in self.std])

    def apply(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Normalise an array whose last axis is bands into a float32 array: a new one, or
        `out` (same shape), which the scan reuses from one sub-tile to the next.

        At most one allocation: on a scan sub-tile the array is hundreds of MB.
        """
        if out is None:
            out = np.array(x, dtype=np.float32)
        else:
            np.copyto(out, x, casting="unsafe")
        out -= np.asarray(self.mean, dtype=np.float32)
        out /= np.asarray(self.std, dtype=np.float32)
        return out


class ModelCard(BaseModel):
    """Everything about a trained network that a scan or an auditor needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = Field(FORMAT_VERSION, description="model directory format")
    kind: ModelKind = Field(description="which network: the paper's two, or the MapBiomas U-Net")
    name: str = Field(description="human name, e.g. 'demo-discovery'")
    version: str = Field(description="version string recorded in every detection")
    bands: list[str] = Field(description="input band (or series feature) names, in channel order")
    normalization: Normalization
    class_names: list[str] = Field(description="softmax output order (series: negative, positive)")
    input_size: int = Field(description="training chip edge in pixels (201, 21 or a U-Net tile)")
    threshold: float | None = Field(
        None, description="p(mine) at or above which a cell (discovery) or pixel (series) is mining"
    )
    weights_file: str = Field(
        WEIGHTS_FILE, description="file name of the Keras model, inside the model directory"
    )
    weights_sha256: str = Field(description="SHA-256 of the weights file, hex")
    input_dtype: str | None = Field(
        None, description="pixel type of the training data, e.g. uint16 (None: not recorded)"
    )
    input_range: tuple[float, float] | None = Field(
        None, description="0.1 and 99.9 percentiles of the training data's values, all bands"
    )
    training: dict[str, Any] = Field(
        default_factory=dict, description="data description: counts, source, seeds"
    )
    metrics: dict[str, Any] = Field(default_factory=dict, description="evaluation results")
    created_at: str = Field(description="UTC ISO-8601 time the directory was written")
    library_versions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> "ModelCard":
        if len(self.normalization.mean) != len(self.bands):
            raise ValueError(
                f"normalization has {len(self.normalization.mean)} values "
                f"but the model has {len(self.bands)} bands"
            )
        if self.kind in ("discovery", "series") and self.threshold is None:
            raise ValueError(f"a {self.kind} model needs a threshold")
        if self.kind == "series" and len(self.class_names) != 2:
            raise ValueError("a series model has two class names: negative, positive")
        name = self.weights_file
        if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
            raise ValueError(f"weights_file {name!r} must be a file name inside the model directory")
        return self

    @property
    def n_bands(self) -> int:
        return len(self.bands)

    @property
    def n_outputs(self) -> int:
        """Output channels of the network: one sigmoid for a series U-Net, else a softmax."""
        return 1 if self.kind == "series" else len(self.class_names)

    @property
    def ref(self) -> str:
        """`name@version#sha256[:12]`: what a detection records about its model."""
        return f"{self.name}@{self.version}#{self.weights_sha256[:12]}"


@dataclass(frozen=True)
class LoadedModel:
    """A verified model card, its local directory, and its Keras model on first use.

    The Keras file is read only when `model` is asked for: a backend whose derived model
    is cached under the card's hash never needs TensorFlow at all.
    """

    card: ModelCard
    path: Path

    @cached_property
    def model(self) -> "keras.Model":
        return _load_keras(self.path, self.card)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("minescan", "tensorflow", "tensorflow-cpu", "keras", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def save_model_dir(
    model: "keras.Model",
    out_dir: str | os.PathLike[str],
    *,
    kind: ModelKind,
    name: str,
    version: str,
    bands: list[str] | tuple[str, ...],
    normalization: Normalization,
    class_names: list[str] | tuple[str, ...],
    input_size: int,
    threshold: float | None = None,
    input_dtype: str | None = None,
    input_range: tuple[float, float] | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    overwrite: bool = False,
    extras: Callable[[Path, ModelCard], None] | None = None,
) -> ModelCard:
    """Write `model` and its card to `out_dir` atomically; return the card.

    `extras(staging_dir, card)` may add files (a training report) before the directory
    appears, so they are part of the same all-or-nothing write.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ModelError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it")
    if out.exists() and not (out / CARD_FILE).is_file() and (not out.is_dir() or any(out.iterdir())):
        raise ModelError(f"{out} exists and is not a model directory; minescan never deletes what "
                         "it did not write: choose a new or empty output directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from a container's non-root user
    try:
        weights = staging / WEIGHTS_FILE
        _inference_copy(model).save(weights)
        card = ModelCard(
            kind=kind,
            name=name,
            version=version,
            bands=list(bands),
            normalization=normalization,
            class_names=list(class_names),
            input_size=input_size,
            threshold=threshold,
            input_dtype=input_dtype,
            input_range=input_range,
            weights_sha256=sha256_file(weights),
            training=training or {},
            metrics=metrics or {},
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            library_versions=library_versions(),
        )
        (staging / CARD_FILE).write_text(card.model_dump_json(indent=2) + "\n")
        if extras is not None:
            extras(staging, card)
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return card


def _inference_copy(model: "keras.Model") -> "keras.Model":
    """The same network and weights without optimizer state (a third of the file size)."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def read_model_card(path: str | os.PathLike[str], *, verify: bool = True) -> ModelCard:
    """Read and validate a model directory's card; with `verify`, check the weights hash."""
    root = Path(path)
    card_path = root / CARD_FILE
    if not root.is_dir():
        raise ModelError(f"model directory {root} does not exist or is not a directory")
    try:
        raw = json.loads(card_path.read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{card_path} is missing: {root} is not a minescan model directory"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {card_path}: {exc}") from None
    card = validate(ModelCard, raw, f"{card_path} is invalid", error=ModelError)
    if card.format_version != FORMAT_VERSION:
        raise ModelError(
            f"{card_path} has format_version {card.format_version}; this minescan reads "
            f"{FORMAT_VERSION}. Re-export the model with this version."
        )
    if verify:
        weights = root / card.weights_file
        if not weights.is_file():
            raise ModelError(f"{weights} is missing from the model directory")
        actual = sha256_file(weights)
        if actual != card.weights_sha256:
            raise ModelError(
                f"{weights} has SHA-256 {actual[:16]}…, but model.json expects "
                f"{card.weights_sha256[:16]}…: the weights were altered or truncated. "
                "Re-download or re-train the model."
            )
    return card


def local_model_dir(path: str | os.PathLike[str]) -> Path:
    """A local copy of a model directory: itself if local, else downloaded from gs:// into a
    per-URI cache (safe to reuse: the weights hash is checked on every load)."""
    from .. import storage

    if not storage.is_remote(str(path)):
        return Path(path)
    cache = Path(tempfile.gettempdir()) / "minescan-models" / hashlib.sha256(str(path).encode()).hexdigest()[:16]
    try:
        return storage.localize(str(path), cache)
    except storage.NotFoundError:
        raise ModelError(f"model directory {path} does not exist (no objects under it)") from None


def verified_card(
    path: str | os.PathLike[str], *, kind: ModelKind | None = None
) -> tuple[ModelCard, Path]:
    """A model directory's hash-checked card and the local directory holding it, without
    loading Keras (a gs:// directory is downloaded first)."""
    local = local_model_dir(path)
    card = read_model_card(local)
    if kind is not None and card.kind != kind:
        raise ModelError(f"{path} holds a {card.kind} model where a {kind} model is needed")
    return card, local


def load_model_dir(
    path: str | os.PathLike[str], *, kind: ModelKind | None = None
) -> LoadedModel:
    """Verify and load a model directory (local or gs://); `kind` guards against swapping
    the networks."""
    loaded = verified_model_dir(path, kind=kind)
    _ = loaded.model  # load now, so a broken archive fails here
    return loaded


def verified_model_dir(
    path: str | os.PathLike[str], *, kind: ModelKind | None = None
) -> LoadedModel:
    """Verify a model directory (local or gs://) without loading Keras: the network is
    read when `.model` is first used."""
    card, local = verified_card(path, kind=kind)
    return LoadedModel(card=card, path=Path(local))


def _load_keras(path: Path, card: ModelCard) -> "keras.Model":
    import keras

    try:
        model = keras.saving.load_model(path / card.weights_file, compile=False)
    except Exception as exc:  # keras raises many types for a corrupt archive
        raise ModelError(f"cannot load {path / card.weights_file}: {exc}") from None
    if model.output_shape[-1] != card.n_outputs or model.input_shape[-1] != card.n_bands:
        raise ModelError(
            f"{path}: the network takes {model.input_shape[-1]} bands and gives "
            f"{model.output_shape[-1]} outputs, but model.json says {card.n_bands} bands "
            f"and {card.n_outputs} outputs"
        )
    return model
