"""`minescan series demo`: the whole MapBiomas branch on SYNTHETIC Landsat regions, scored per year.

Two synthetic 20-year regions (`minescan.synth.landsat`) with planted mines that open, grow,
pause, are abandoned and revegetate, garimpos along a river, look-alikes and cloud gaps: the
U-Net is trained on one (its per-year truth masks are the labels) and classifies every year
of the other, which it has never seen; then the four filters, substance coding from a
register of the planted mines, and hectares per year. Each year of the test region is
scored against its planted truth, before and after the filters:

- raw, observed pixels: the U-Net where the year's mosaic saw the ground;
- raw, all pixels: the same map, a cloud gap counted as "not mining" (what an annual map
  without the gap-fill would say there);
- filtered, all pixels: the product, every pixel of every year.

The imagery is SYNTHETIC: the figures say the branch works end to end and the filters do
what the method says they do, not how the method does on real Landsat mosaics.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..log import timed

log = logging.getLogger(__name__)

#: what the register says each planted kind mines (ANM spelling) and how
_REGISTER = {"garimpo": ("Ouro", "garimpo"), "open_pit_iron": ("Minério de Ferro", "industrial"),
             "quarry_sand": ("Areia", "industrial")}


@dataclass(frozen=True)
class SeriesDemoConfig:
    seed: int = 2024
    first_year: int = 2000
    last_year: int = 2019
    train_px: int = 512  # 15.4 km at 30 m
    test_px: int = 256  # 7.7 km: one 512-px window a year
    origin_lonlat: tuple[float, float] = (-56.40, -6.20)  # the Tapajós gold province, Pará
    width: int = 16
    tile: int = 128
    tiles_per_year: int = 12
    epochs: int = 12
    batch_size: int = 8


def run_series_demo(out: str | Path, config: SeriesDemoConfig = SeriesDemoConfig(), *,
                    overwrite: bool = False) -> dict[str, Any]:
    """Run every stage into `out` and return the report (also written as report.json/.md)."""
    import tensorflow as tf

    from ..synth.landsat import LANDSAT_PIXEL_DEG, synthesize_series
    from ..training.loop import TrainSettings
    from ..training.progress import EpochReporter
    from .chunked import SeriesFilterConfig, filter_cube
    from .cube import build_cube
    from .predict import predict_cube
    from .stats import RegionLayer, mining_stats
    from .substance import RegisterColumns, code_cube, read_register
    from .train import SeriesTrainConfig, run_series_training

    root = Path(out)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise InputError(f"{root} is not empty; pass --overwrite to replace the demo there")
    timings: dict[str, float] = {}
    with timed(timings, "synthesise"):
        span = dict(first_year=config.first_year, last_year=config.last_year, overwrite=True)
        lon, lat = config.origin_lonlat
        synthesize_series(root / "train", size=config.train_px, seed=config.seed, origin_lonlat=(lon, lat), **span)
        test_origin = (lon + (config.train_px + 50) * LANDSAT_PIXEL_DEG, lat)
        truth = synthesize_series(root / "test", size=config.test_px, seed=config.seed + 1,
                                  origin_lonlat=test_origin, **span)
    with timed(timings, "cubes"):
        build_cube(root / "train" / "mosaics", root / "train.zarr", overwrite=True)
        build_cube(root / "test" / "mosaics", root / "test.zarr", overwrite=True)
    with timed(timings, "train"):
        train_config = SeriesTrainConfig(
            out=str(root / "model"), cube=str(root / "train.zarr"), labels=str(root / "train" / "truth"),
            width=config.width, tile=config.tile, tiles_per_scene=config.tiles_per_year, name="demo-series",
            version="synthetic", overwrite=True,
            settings=TrainSettings(epochs=config.epochs, batch_size=config.batch_size, seed=config.seed,
                                   deterministic=True),
        )
        with EpochReporter(1, config.epochs) as reporter:
            card = run_series_training(train_config, tf.distribute.get_strategy(), on_epoch=reporter)
    with timed(timings, "predict"):
        predict_cube(root / "test.zarr", root / "model", root / "classes.zarr", overwrite=True)
    with timed(timings, "filter"):
        filter_cube(root / "classes.zarr", root / "filtered.zarr", SeriesFilterConfig(), threads=2, overwrite=True)
    with timed(timings, "substance+stats"):
        register = _write_register(root / "register.csv", truth)
        code_cube(root / "filtered.zarr", root / "coded.zarr",
                  read_register(register, RegisterColumns(substance="substance", kind="type", lon="lon", lat="lat")),
                  overwrite=True)
        regions = _write_regions(root / "regions.geojson", truth)
        mining_stats(root / "coded.zarr", root / "stats", [RegionLayer(str(regions), "name")], overwrite=True)
    report = {
        "synthetic": True,
        "config": asdict(config),
        "model": card.ref if card else None,
        "parameters": card.training["architecture"]["parameters"] if card else None,
        "planted": {"mines": len(truth.targets), "lookalikes": len(truth.objects) - len(truth.targets)},
        **score_years(root / "classes.zarr", root / "filtered.zarr", root / "test.zarr", root / "model",
                      truth.mining),
        "timings_s": {stage: round(seconds, 1) for stage, seconds in timings.items()},
        "outputs": {name: str(root / name) for name in
                    ("test.zarr", "model", "classes.zarr", "filtered.zarr", "coded.zarr", "stats")},
    }
    (root / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (root / "report.md").write_text(format_report(report) + "\n", encoding="utf-8")
    return report


#: the maps scored: the raw U-Net (observed pixels; every pixel), each filter in turn, the
#: product (the chunked filters' cube, equal to the last stage) on every pixel and on the
#: observed ones (the raw map's own pixels), and the spectral baseline on the observed ones
STAGES = ("raw_observed", "raw_all", "gap_fill", "temporal", "spatial", "frequency", "filtered",
          "filtered_observed", "baseline")


def stage_maps(raw: np.ndarray, years: Sequence[int]) -> dict[str, np.ndarray]:
    """The raw class cube after each filter of the chain, in the method's order."""
    from .filters import FILTERS, filter_stages

    stages, _ = filter_stages(raw, years)
    return dict(zip(FILTERS, stages[1:], strict=True))


def score_years(raw_path: Path, filtered_path: Path, cube_path: Path, model_path: Path,
                truth: np.ndarray) -> dict[str, Any]:
    """Per-year and pooled pixel scores of every stage against the planted truth."""
    from ..models.card import read_model_card
    from .baseline import SpectralBaseline
    from .cube import open_feature_cube
    from .cube_io import open_class_cube
    from .filters import MINING, NODATA
    from .scores import PixelCounts, count

    raw_cube = open_class_cube(raw_path)
    years = raw_cube.grid.years
    raw, filtered = raw_cube.read(), open_class_cube(filtered_path).read()
    if raw.shape != truth.shape or filtered.shape != truth.shape:
        raise InputError(f"class cubes {raw.shape}/{filtered.shape} do not match the truth {truth.shape}")
    stages = stage_maps(raw, years)
    card = read_model_card(model_path)
    baseline = SpectralBaseline.from_json(card.training["baseline"])
    features = open_feature_cube(cube_path)
    totals = {n: PixelCounts() for n in STAGES}
    rows = []
    for i, year in enumerate(years):
        observed = raw[i] != NODATA
        x = features.year_features(year, card.bands)
        counts = {"raw_observed": count(raw[i] == MINING, truth[i], observed),
                  "raw_all": count(raw[i] == MINING, truth[i]),
                  **{n: count(m[i] == MINING, truth[i]) for n, m in stages.items()},
                  "filtered": count(filtered[i] == MINING, truth[i]),
                  "filtered_observed": count(filtered[i] == MINING, truth[i], observed),
                  "baseline": count(baseline.predict(x, card.bands), truth[i], observed)}
        for n in STAGES:
            totals[n] += counts[n]
        rows.append({"year": year, "cloud_share": round(1 - float(observed.mean()), 3),
                     "mining_px": int(truth[i].sum()), **{n: counts[n].scores() for n in STAGES}})
    return {"years": rows, "overall": {n: totals[n].scores() for n in STAGES},
            "baseline": baseline.as_json()}


def _write_register(path: Path, truth: Any) -> Path:
    """A register of the planted mines: one point inside each, with its substance and type."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "lon", "lat", "substance", "type"])
        for obj in truth.targets:
            point = truth.lonlat(obj.footprint).representative_point()
            writer.writerow([obj.id, f"{point.x:.6f}", f"{point.y:.6f}", *_REGISTER[obj.kind]])
    return path


def _write_regions(path: Path, truth: Any) -> Path:
    """Two synthetic regions, the western and eastern halves of the test area."""
    from shapely.geometry import box, mapping

    half = truth.size / 2
    halves = {"west (SYNTHETIC)": box(0, 0, half, truth.size), "east (SYNTHETIC)": box(half, 0, truth.size, truth.size)}
    features = [{"type": "Feature", "properties": {"name": name},
                 "geometry": mapping(truth.lonlat(poly))} for name, poly in halves.items()]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}) + "\n", encoding="utf-8")
    return path


def format_report(report: dict[str, Any]) -> str:
    overall = report["overall"]
    cfg = report["config"]

    def line(label: str, name: str, note: str = "") -> str:
        o = overall[name]
        return (f"    {label:<30} F1 {o['f1']:.3f}  precision {o['precision']:.3f}  recall "
                f"{o['recall']:.3f}{note}")

    lines = [
        f"minescan series demo — SYNTHETIC Landsat, {cfg['first_year']}–{cfg['last_year']}, "
        f"a {cfg['test_px']}² px (30 m) test region unseen in training",
        f"  planted: {report['planted']['mines']} mines (pits, quarries, garimpos along the river), "
        f"{report['planted']['lookalikes']} look-alikes (water dams, sand banks, towns, bare fields)",
        f"  U-Net width {cfg['width']} ({report['parameters']:,} parameters), {cfg['epochs']} epochs on "
        f"{cfg['tile']}-px tiles of the training region",
        "  pixel scores against the planted truth, all years pooled:",
        line("U-Net raw, observed pixels", "raw_observed"),
        line("U-Net raw, all pixels", "raw_all", "  (a cloud gap says not mining)"),
        line("+ gap-fill", "gap_fill"),
        line("+ temporal", "temporal"),
        line("+ spatial", "spatial"),
        line("+ frequency = filtered product", "filtered"),
        line("filtered, observed pixels", "filtered_observed"),
        line("spectral baseline, observed", "baseline", f"  ({report['baseline']['index']})"),
        "  per year: F1 raw (observed) / raw (all) / filtered, cloud share:",
    ]
    for y in report["years"]:
        lines.append(f"    {y['year']}  {y['raw_observed']['f1']:.3f} / {y['raw_all']['f1']:.3f} / "
                     f"{y['filtered']['f1']:.3f}   clouds {y['cloud_share']:.2f}")
    lines.append(f"  time (s): {report['timings_s']}")
    lines.append("  outputs:")
    lines += [f"    {name:<14} {path}" for name, path in report["outputs"].items()]
    return "\n".join(lines)
