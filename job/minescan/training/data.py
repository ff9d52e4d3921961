"""Labelled chips from the three sources, checked, in one in-memory `ChipSet`.

(a) class folders, the authors' layout: `DIR/<class_name>/*.tif`, GeoTIFF chips all of one
    size and band count (uint16 reflectance×10000, as the scenes the scan reads);
(b) a scene (or several) and a points table (CSV with lon/lat columns, or GeoJSON /
    shapefile / GeoPackage points) with a `label` column, or for the impact network an
    `ore` column mapped through `minescan.ores`, or for the discovery network a reviewed
    sites table (its `review` column: confirmed → mine, false_positive → not_mine, the
    hard negatives the paper's analysts removed by hand); chips are cut with rasterio
    windows and a point whose chip does not lie wholly inside a scene is skipped and reported;
(c) Earth Engine TFRecord chips (`*.tfrecord`, `*.tfrecord.gz`), as an EE table export of
    `neighborhoodToArray` samples writes them: one float list of size×size values per band,
    named by the band, plus a `label` (class index, or class name as bytes) and optional
    `lon`/`lat`.

Chips keep their source dtype (uint16 chips cost half the memory of float32: 2,860
discovery chips are 2.8 GB); normalisation happens per batch. Any bad chip is an
`InputError` that names its file, so a user can find and fix it.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..bands import select_bands
from ..errors import InputError
from ..models.card import Normalization
from ..ores import OreMapping, classify_ore
from ..points import read_points_table

log = logging.getLogger(__name__)

CHIP_SUFFIXES = (".tif", ".tiff")
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecord.gz", ".tfrecords", ".tfrecords.gz")


@dataclass(frozen=True)
class ChipSet:
    """Chips (n, row, col, band) with labels, centres and where each came from."""

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    bands: tuple[str, ...]
    origins: tuple[str, ...]
    lon: np.ndarray
    lat: np.ndarray
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.x.shape[1])

    @property
    def has_centres(self) -> bool:
        return bool(np.all(np.isfinite(self.lon)) and np.all(np.isfinite(self.lat)))

    def counts(self) -> dict[str, int]:
        return {name: int((self.y == i).sum()) for i, name in enumerate(self.class_names)}

    def describe(self) -> dict[str, Any]:
        """The data description stored in the model card."""
        return {
            "n_chips": int(self.y.size),
            "counts": self.counts(),
            "bands": list(self.bands),
            "chip_size": self.size,
            "dtype": str(self.x.dtype),
            "georeferenced": self.has_centres,
            "source": self.source,
        }


class DataSpec(BaseModel):
    """Where the chips come from: `data` (folders or TFRecords) or `scenes` + `points`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: str | None = Field(None, description="class-folder root, TFRecord file, dir or glob")
    scenes: tuple[str, ...] = Field((), description="GeoTIFF scenes to cut chips from")
    points: str | None = Field(None, description="points table: CSV, GeoJSON, shapefile, GPKG")
    label_column: str = Field("label", description="points/TFRecord label field")
    ore_column: str = Field("ore", description="points column of ore names (impact network)")


def load_chips(
    spec: DataSpec,
    *,
    kind: Literal["discovery", "impact"],
    class_names: tuple[str, ...],
    bands: tuple[str, ...],
    size: int,
    ore_mapping: OreMapping | None = None,
    training: bool = True,
) -> ChipSet:
    """Read and check chips from whichever source `spec` names.

    For training every class must have chips; a held-out set (`training=False`) may lack
    some, e.g. a set of mines only.
    """
    if spec.points or spec.scenes:
        if not (spec.points and spec.scenes):
            raise InputError("cutting chips needs both --scene and --points")
        chips = read_point_chips(
            spec.scenes, spec.points, class_names=class_names, bands=bands, size=size,
            kind=kind, label_column=spec.label_column, ore_column=spec.ore_column,
            ore_mapping=ore_mapping,
        )
    elif spec.data is None:
        raise InputError("no training data: pass --data DIR|TFRECORD or --scene and --points")
    elif _tfrecord_paths(spec.data):
        chips = read_ee_tfrecords(
            _tfrecord_paths(spec.data), class_names=class_names, bands=bands, size=size,
            label_key=spec.label_column, ore_key=spec.ore_column if kind == "impact" else None,
            ore_mapping=ore_mapping,
        )
    elif Path(spec.data).is_dir():
        chips = read_chip_folders(
            spec.data, class_names=class_names, bands=bands, size=size, require_all=training
        )
    else:
        raise InputError(
            f"{spec.data} is neither a folder of class folders nor TFRecord files "
            f"({', '.join(TFRECORD_SUFFIXES)})"
        )
    if training:
        check_classes(chips)
    return chips


def check_classes(chips: ChipSet) -> None:
    """Every class must have chips: a classifier cannot learn a class it never saw."""
    counts = chips.counts()
    missing = [name for name, n in counts.items() if n == 0]
    if len(missing) >= len(counts) - 1:
        raise InputError(
            f"training data has a single class ({counts}); a classifier needs chips of "
            f"every class {list(chips.class_names)}"
        )
    if missing:
        raise InputError(f"no chips of class {missing} ({counts}); add some or fix the labels")


# --- (a) class folders ----------------------------------------------------------------


def read_chip_folders(
    root: str | os.PathLike[str],
    *,
    class_names: tuple[str, ...],
    bands: tuple[str, ...],
    size: int,
    require_all: bool = True,
) -> ChipSet:
    """Read `root/<class_name>/*.tif`; with `require_all`, every class folder must hold chips."""
    root = Path(root)
    subdirs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [d for d in subdirs if d not in class_names]
    if unknown:
        raise InputError(
            f"{root} has folder(s) {unknown} that are not classes {list(class_names)}; "
            "rename or remove them"
        )
    present = [c for c in class_names if (root / c).is_dir()]
    if require_all and len(present) < 2:
        raise InputError(
            f"{root} has chips of {len(present)} class(es) {present}; a classifier needs "
            f"one folder per class {list(class_names)}"
        )
    arrays, labels, origins, lonlat = [], [], [], []
    for label, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir() and not require_all:
            continue
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in CHIP_SUFFIXES) if folder.is_dir() else []
        if not files:
            raise InputError(f"class folder {folder} has no GeoTIFF chips (*.tif)")
        for path in files:
            chip, centre = read_chip_file(path, bands=bands, size=size)
            arrays.append(chip)
            labels.append(label)
            origins.append(str(path))
            lonlat.append(centre)
    if not arrays:
        raise InputError(f"{root} has no class folders {list(class_names)} with chips")
    x = _stack(arrays)
    lon, lat = np.array(lonlat, dtype=np.float64).T
    return ChipSet(
        x=x, y=np.array(labels, dtype=np.int64), class_names=tuple(class_names),
        bands=tuple(bands), origins=tuple(origins), lon=lon, lat=lat,
        source={"type": "class_folders", "path": str(root)},
    )


def read_chip_file(
    path: Path, *, bands: tuple[str, ...], size: int
) -> tuple[np.ndarray, tuple[float, float]]:
    """One GeoTIFF chip as (row, col, band) and its centre (lon, lat), NaN if not georeferenced."""
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as src:
            indexes = list(select_bands(src.descriptions, src.count, bands, str(path)))
            if (src.height, src.width) != (size, size):
                raise InputError(
                    f"{path} is {src.height}×{src.width} px; chips for this network must be "
                    f"{size}×{size}"
                )
            data = src.read(indexes)
            centre = _centre_lonlat(src.crs, src.transform, size)
    except RasterioError as exc:
        raise InputError(f"cannot read chip {path}: {exc}") from None
    chip = np.moveaxis(data, 0, -1)
    check_finite(chip, str(path))
    return chip, centre


def check_finite(chip: np.ndarray, where: str) -> None:
    if np.issubdtype(chip.dtype, np.floating) and not np.all(np.isfinite(chip)):
        bad = int((~np.isfinite(chip)).sum())
        raise InputError(f"{where} has {bad} NaN/inf values; fill or drop the chip")


def _centre_lonlat(crs: Any, transform: Any, size: int) -> tuple[float, float]:
    if crs is None or transform.is_identity:
        return (float("nan"), float("nan"))
    from rasterio.warp import transform as warp

    x, y = transform @ (size / 2.0, size / 2.0)
    lon, lat = warp(crs, "EPSG:4326", [x], [y])
    return (float(lon[0]), float(lat[0]))


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    dtypes = {a.dtype for a in arrays}
    dtype = dtypes.pop() if len(dtypes) == 1 else np.float32
    return np.stack(arrays).astype(dtype, copy=False)


# --- (b) scene + points -----------------------------------------------------------------


def point_labels(
    df: Any,
    *,
    kind: Literal["discovery", "impact"],
    class_names: tuple[str, ...],
    label_column: str,
    ore_column: str,
    ore_mapping: OreMapping | None,
    where: str,
) -> tuple[np.ndarray, dict[str, int]]:
    """Class index per row (−1 = unusable) and the unknown ore names with their counts."""
    labels = np.full(len(df), -1, dtype=np.int64)
    unknown: dict[str, int] = {}
    if kind == "discovery" and label_column not in df.columns and "review" in df.columns:
        return review_labels(df, class_names, where), unknown
    has_label = label_column in df.columns
    has_ore = kind == "impact" and ore_column in df.columns
    if not has_label and not has_ore:
        need = f"'{label_column}'" + (f" or '{ore_column}'" if kind == "impact" else "")
        raise InputError(f"{where} has no {need} column; columns are {list(df.columns)}")
    for i in range(len(df)):
        value = df[label_column].iloc[i] if has_label else None
        if value is not None and not _is_missing(value):
            labels[i] = parse_label(value, class_names, f"{where} row {i + 1}")
        elif has_ore and not _is_missing(df[ore_column].iloc[i]):
            ore = str(df[ore_column].iloc[i])
            match = classify_ore(ore, ore_mapping)
            if match is None:
                unknown[ore] = unknown.get(ore, 0) + 1
            else:
                labels[i] = class_names.index(match.impact)
        else:
            raise InputError(f"{where} row {i + 1} has no label")
    return labels, unknown


def review_labels(df: Any, class_names: tuple[str, ...], where: str) -> np.ndarray:
    """Discovery labels from a reviewed sites table; sites without a yes/no verdict: −1."""
    from ..sites.reviews import DISCOVERY_LABEL, normalise_verdict

    verdicts = [normalise_verdict(v, f"{where} row {i + 1}") for i, v in enumerate(df["review"])]
    labels = np.array([class_names.index(DISCOVERY_LABEL[v]) if v in DISCOVERY_LABEL else -1 for v in verdicts])
    log.info("%s: %d confirmed sites as mine, %d false positives as not_mine (hard negatives), %d skipped",
             where, int((labels == class_names.index("mine")).sum()),
             int((labels == class_names.index("not_mine")).sum()), int((labels < 0).sum()))
    return labels.astype(np.int64)


def parse_label(value: Any, class_names: tuple[str, ...], where: str) -> int:
    """A class name (any case) or a class index → class index."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str):
        text = value.strip()
        lowered = [c.lower() for c in class_names]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"{where}: label '{text}' is not one of {list(class_names)}") from None
    number = float(value)
    if number.is_integer() and 0 <= number < len(class_names):
        return int(number)
    raise InputError(f"{where}: label {value!r} is not a class index 0..{len(class_names) - 1}")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


def read_point_chips(
    scenes: tuple[str, ...] | list[str],
    points: str,
    *,
    class_names: tuple[str, ...],
    bands: tuple[str, ...],
    size: int,
    kind: Literal["discovery", "impact"],
    label_column: str = "label",
    ore_column: str = "ore",
    ore_mapping: OreMapping | None = None,
) -> ChipSet:
    """Cut a size×size chip centred on each point from the first scene that holds it whole."""
    import rasterio
    from rasterio.errors import RasterioError
    from rasterio.warp import transform as warp
    from rasterio.windows import Window

    df = read_points_table(points)
    if len(df) == 0:
        raise InputError(f"points table {points} is empty")
    labels, unknown = point_labels(
        df, kind=kind, class_names=class_names, label_column=label_column,
        ore_column=ore_column, ore_mapping=ore_mapping, where=str(points),
    )
    if unknown:
        log.warning(
            "skipping %d point(s) with ores the mapping does not know: %s",
            sum(unknown.values()), unknown, extra={"unknown_ores": unknown},
        )
    lon = df["lon"].to_numpy(dtype=np.float64)
    lat = df["lat"].to_numpy(dtype=np.float64)
    chips: dict[int, np.ndarray] = {}
    half = size // 2
    for scene in scenes:
        try:
            with rasterio.open(scene) as src:
                indexes = list(select_bands(src.descriptions, src.count, bands, str(scene)))
                xs, ys = warp("EPSG:4326", src.crs, lon.tolist(), lat.tolist())
                rows, cols = rasterio.transform.rowcol(src.transform, xs, ys)
                for i, (r, c) in enumerate(zip(rows, cols)):
                    if i in chips or labels[i] < 0:
                        continue
                    r0, c0 = int(r) - half, int(c) - half
                    if r0 < 0 or c0 < 0 or r0 + size > src.height or c0 + size > src.width:
                        continue
                    chip = np.moveaxis(src.read(indexes, window=Window(c0, r0, size, size)), 0, -1)
                    check_finite(chip, f"{scene} around point row {i + 1}")
                    chips[i] = chip
        except RasterioError as exc:
            raise InputError(f"cannot read scene {scene}: {exc}") from None
    outside = [i for i in range(len(df)) if labels[i] >= 0 and i not in chips]
    if outside:
        log.warning(
            "skipping %d point(s) whose %d px chip is not wholly inside any scene (rows %s)",
            len(outside), size, [i + 1 for i in outside[:10]], extra={"skipped_points": len(outside)},
        )
    keep = sorted(chips)
    if not keep:
        raise InputError(f"no point of {points} has a whole {size} px chip inside {list(scenes)}")
    return ChipSet(
        x=_stack([chips[i] for i in keep]), y=labels[keep], class_names=tuple(class_names),
        bands=tuple(bands), origins=tuple(f"{points} row {i + 1}" for i in keep),
        lon=lon[keep], lat=lat[keep],
        source={
            "type": "scene_points", "scenes": list(map(str, scenes)), "points": str(points),
            "skipped_outside": len(outside), "unknown_ores": unknown,
        },
    )


# --- (c) Earth Engine TFRecords ---------------------------------------------------------


def _tfrecord_paths(data: str) -> list[str]:
    """TFRecord files named by a file, a directory of them, or a glob; [] if none."""
    def is_tfrecord(p: str) -> bool:
        return p.lower().endswith(TFRECORD_SUFFIXES)

    if Path(data).is_dir():
        return sorted(str(p) for p in Path(data).iterdir() if is_tfrecord(p.name))
    if any(ch in data for ch in "*?["):
        return sorted(p for p in glob.glob(data) if is_tfrecord(p))
    return [data] if is_tfrecord(data) and Path(data).is_file() else []


def read_ee_tfrecords(
    paths: list[str],
    *,
    class_names: tuple[str, ...],
    bands: tuple[str, ...],
    size: int,
    label_key: str = "label",
    ore_key: str | None = None,
    ore_mapping: OreMapping | None = None,
) -> ChipSet:
    """Parse `tf.train.Example` records: per-band float lists of size² values, a label.

    With `ore_key` (impact network), a record whose label is not an impact class (the
    acquisition export labels every chip `mine`) takes the class of its ore name; records
    with ores the mapping does not know are skipped and reported.
    """
    import tensorflow as tf

    arrays, labels, origins, lonlat = [], [], [], []
    unknown: dict[str, int] = {}
    for path in paths:
        compression = "GZIP" if path.lower().endswith(".gz") else ""
        try:
            records = list(tf.data.TFRecordDataset(path, compression_type=compression).as_numpy_iterator())
        except tf.errors.OpError as exc:
            raise InputError(f"cannot read TFRecord {path}: {exc.message}") from None
        for n, record in enumerate(records):
            where = f"{path} record {n}"
            chip, label, centre = parse_ee_example(
                record, class_names, bands, size, label_key, where, ore_key, ore_mapping
            )
            if isinstance(label, str):
                unknown[label] = unknown.get(label, 0) + 1
                continue
            arrays.append(chip)
            labels.append(label)
            origins.append(where)
            lonlat.append(centre)
    if unknown:
        log.warning("skipping %d record(s) with ores the mapping does not know: %s",
                    sum(unknown.values()), unknown, extra={"unknown_ores": unknown})
    if not arrays:
        raise InputError(f"TFRecord file(s) {paths} hold no usable records")
    lon, lat = np.array(lonlat, dtype=np.float64).T
    return ChipSet(
        x=_stack(arrays), y=np.array(labels, dtype=np.int64), class_names=tuple(class_names),
        bands=tuple(bands), origins=tuple(origins), lon=lon, lat=lat,
        source={"type": "ee_tfrecord", "files": list(paths), "unknown_ores": unknown},
    )


def parse_ee_example(
    record: bytes,
    class_names: tuple[str, ...],
    bands: tuple[str, ...],
    size: int,
    label_key: str,
    where: str,
    ore_key: str | None = None,
    ore_mapping: OreMapping | None = None,
) -> tuple[np.ndarray, int | str, tuple[float, float]]:
    """One EE example → (chip (size, size, bands) float32, class index, (lon, lat)).

    The class is the unknown ore's name (a str) when it comes from an ore the mapping lacks.
    """
    from google.protobuf.message import DecodeError
    from tensorflow.core.example import example_pb2

    try:
        features = example_pb2.Example.FromString(record).features.feature
    except DecodeError:
        raise InputError(f"{where} is not a tf.train.Example") from None
    planes = []
    for band in bands:
        values = _feature_values(features, band)
        if values is None:
            raise InputError(f"{where} has no band '{band}' (has {sorted(features)}); check --bands")
        if values.size != size * size:
            raise InputError(
                f"{where}: band {band} has {values.size} values, expected {size}×{size}={size * size}"
            )
        planes.append(values.reshape(size, size).astype(np.float32))
    chip = np.stack(planes, axis=-1)
    check_finite(chip, where)
    if label_key not in features:
        raise InputError(f"{where} has no '{label_key}' feature")
    feat = features[label_key]
    raw = _feature_values(features, label_key)
    value: Any = feat.bytes_list.value[0] if feat.HasField("bytes_list") and feat.bytes_list.value else (
        raw[0] if raw is not None and raw.size else None
    )
    if value is None:
        raise InputError(f"{where}: '{label_key}' is empty")
    ore = _bytes_value(features, ore_key) if ore_key else None
    text = value.decode("utf-8") if isinstance(value, bytes) else value
    if ore and isinstance(text, str) and text.strip().lower() not in [c.lower() for c in class_names]:
        match = classify_ore(ore, ore_mapping)
        label: int | str = ore if match is None else class_names.index(match.impact)
    else:
        label = parse_label(value, class_names, where)
    lon, lat = (_scalar(features, k) for k in ("lon", "lat"))
    if np.isnan(lon) or np.isnan(lat):
        lon, lat = (_scalar(features, k) for k in ("longitude", "latitude"))
    return chip, label, (lon, lat)


def _feature_values(features: Any, key: str) -> np.ndarray | None:
    if key not in features:
        return None
    feat = features[key]
    if feat.HasField("float_list"):
        return np.asarray(feat.float_list.value, dtype=np.float32)
    if feat.HasField("int64_list"):
        return np.asarray(feat.int64_list.value, dtype=np.int64)
    return None


def _bytes_value(features: Any, key: str) -> str | None:
    if key not in features or not features[key].bytes_list.value:
        return None
    return features[key].bytes_list.value[0].decode("utf-8").strip() or None


def _scalar(features: Any, key: str) -> float:
    values = _feature_values(features, key)
    return float(values[0]) if values is not None and values.size else float("nan")


# --- normalisation ----------------------------------------------------------------------


def compute_normalization(x: np.ndarray, indices: np.ndarray, chunk: int = 64) -> Normalization:
    """Per-band mean and population sd over the chips `indices` only (the training fold).

    Accumulated in float64 over chunks so 2,860 uint16 chips need no float copy. No-data
    (NaN, as in a Landsat mosaic) is left out of the statistics. A constant band gets sd 1
    (not 0) so it normalises to zero instead of dividing by zero.
    """
    n_bands = x.shape[-1]
    total = np.zeros(n_bands)
    total_sq = np.zeros(n_bands)
    count = np.zeros(n_bands)
    for start in range(0, len(indices), chunk):
        block = x[np.sort(indices[start : start + chunk])].astype(np.float64)
        total += np.nansum(block, axis=(0, 1, 2))
        total_sq += np.nansum(np.square(block), axis=(0, 1, 2))
        count += np.isfinite(block).sum(axis=(0, 1, 2))
    if not count.all():
        raise InputError("a band holds no valid value in the training chips: check the no-data")
    mean = total / count
    var = np.maximum(total_sq / count - mean**2, 0.0)
    std = np.sqrt(var)
    std[std <= 1e-6 * np.maximum(np.abs(mean), 1.0)] = 1.0
    return Normalization(mean=mean.tolist(), std=std.tolist())


def value_range(x: np.ndarray, max_chips: int = 512) -> tuple[float, float]:
    """0.1 and 99.9 percentiles of the chips' values over all bands: what the model card
    records as the training data's range, so a scan can refuse a scene in other units.
    No-data (NaN) is left out."""
    step = max(1, len(x) // max_chips)
    sample = np.asarray(x[::step], dtype=np.float64).ravel()
    lo, hi = np.nanpercentile(sample, [0.1, 99.9])
    return float(lo), float(hi)
