"""`minescan demo`: the whole pipeline on a synthetic area, with no cloud and no data.

One synthetic area (planted mines, tailings dams and the paper's look-alikes) is cut into
overlapping scenes on a 27-px-aligned grid, as the acquisition grid cuts a country. Each
scene goes through `minescan map` in its own process with JOB_COMPLETION_INDEX set, the
way a Kubernetes pod runs it; then the reduce builds national sites, and the sites are
scored against the planted truth.

The imagery is synthetic: these figures say the pipeline works end to end, not how well
the paper's networks do on real Sentinel-2 scenes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from .batch.grid import OVERLAP_PX
from .scan import geometry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 2019  # the year of the Brumadinho collapse
    scenes_per_side: int = 2
    scene_px: int = 76 * geometry.STRIDE  # 2052 px ≈ 20.5 km
    origin_lonlat: tuple[float, float] = (-44.20, -19.95)  # Quadrilátero Ferrífero, Minas Gerais
    parallel: int = 2

    @property
    def step_px(self) -> int:
        return self.scene_px - OVERLAP_PX

    @property
    def area_px(self) -> int:
        return self.step_px * (self.scenes_per_side - 1) + self.scene_px


def cut_scenes(area_path: Path, out_dir: Path, cfg: DemoConfig):
    """Cut the area into overlapping scene GeoTIFFs on one 27-px-aligned grid; return their manifest."""
    import rasterio
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    from .batch.manifest import GridDef, Manifest, SceneEntry

    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    with rasterio.open(area_path) as src:
        profile = src.profile
        t = src.transform
        grid = GridDef(
            crs=str(src.crs), origin_lon=t.c, origin_lat=t.f, pixel_deg=t.a,
            stride_px=geometry.STRIDE, scene_step_px=cfg.step_px, scene_px=cfg.scene_px,
            overlap_px=OVERLAP_PX, owned_cell_offset=geometry.HALO_BEFORE_UNITS,
            owned_cells=cfg.step_px // geometry.STRIDE,
        )
        for r in range(cfg.scenes_per_side):
            for c in range(cfg.scenes_per_side):
                window = Window(c * cfg.step_px, r * cfg.step_px, cfg.scene_px, cfg.scene_px)
                scene_id = f"r{r:04d}c{c:04d}"
                path = out_dir / f"{scene_id}.tif"
                wt = window_transform(window, t)
                with rasterio.open(path, "w", **{**profile, "width": cfg.scene_px,
                                                 "height": cfg.scene_px, "transform": wt}) as dst:
                    dst.write(src.read(window=window))
                    dst.descriptions = src.descriptions
                entries.append(SceneEntry(
                    id=scene_id, uri=str(path.resolve()), row=r, col=c,
                    pixel_row=int(window.row_off), pixel_col=int(window.col_off),
                    width=cfg.scene_px, height=cfg.scene_px, transform=tuple(wt)[:6],
                ))
        bands = list(src.descriptions)
    return Manifest(grid=grid, bands=bands, dtype="uint16", nodata=0, scenes=entries)


def run_demo(out: str | Path = "demo-out", cfg: DemoConfig | None = None) -> dict:
    """Synthesise, map every scene through the pod entry point, reduce, score. Returns the report."""
    from .batch.manifest import write_manifest
    from .batch.runner import run_local
    from .outputs import read_detections
    from .sites.cluster import score_against_truth
    from .synth import synthesize_scene, write_truth_geojson

    cfg = cfg or DemoConfig()
    out = Path(out).resolve()
    run = out / "run"
    _clear_previous_demo_run(run)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    area = out / "input" / "area.tif"
    area.parent.mkdir(parents=True, exist_ok=True)
    truth = synthesize_scene(area, size=cfg.area_px, seed=cfg.seed, origin_lonlat=cfg.origin_lonlat)
    write_truth_geojson(truth, out / "input" / "truth.geojson")
    manifest = cut_scenes(area, out / "input" / "scenes", cfg)
    manifest_uri, _ = write_manifest(manifest, str(out / "input" / "manifest.json"))
    timings["synthesise"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    codes, reduced = run_local(manifest_uri, str(run), parallel=cfg.parallel, retries=1,
                               log_dir=out / "logs")
    timings["map_and_reduce"] = time.perf_counter() - t0

    detections = read_detections(reduced.files["detections"])
    score = score_against_truth(detections, truth.objects)
    report = {
        "synthetic": True,
        "area_km2": round((cfg.area_px * 10 / 1000) ** 2, 1),
        "scenes": len(manifest.scenes),
        "planted_targets": score.n_targets,
        "planted_lookalikes": len(truth.lookalikes),
        "targets_found": score.n_targets_found,
        "recall": round(score.recall, 3),
        "sites": score.n_sites,
        "true_sites": score.n_sites_true,
        "precision": round(score.precision, 3),
        "false_sites_by_kind": score.false_sites_by_kind,
        "missed_targets": list(score.missed),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "outputs": {k: str(v) for k, v in reduced.files.items()},
        "run": str(run),
    }
    (out / "demo_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _clear_previous_demo_run(run: Path) -> None:
    """A demo starts from a clean run: remove the previous demo's run, and nothing else."""
    import shutil

    from .batch.layout import RunLayout
    from .errors import ConflictError

    if not run.exists():
        return
    if not Path(RunLayout(str(run)).run_json).is_file():
        raise ConflictError(f"{run} exists and is not a minescan run; the demo never deletes what "
                            "it did not write: choose another --out")
    shutil.rmtree(run)


def format_report(report: dict) -> str:
    lines = [
        f"minescan demo — SYNTHETIC imagery, {report['area_km2']} km² in {report['scenes']} overlapping scenes",
        f"  planted: {report['planted_targets']} mines/tailings dams, {report['planted_lookalikes']} look-alikes"
        " (water-supply dams, river banks, towns, bare fields)",
        f"  recall    {report['recall']:.2f}  ({report['targets_found']}/{report['planted_targets']} planted targets found)",
        f"  precision {report['precision']:.2f}  ({report['true_sites']}/{report['sites']} sites are planted targets)",
    ]
    if report["false_sites_by_kind"]:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(report["false_sites_by_kind"].items()))
        lines.append(f"  false sites by what they sit on: {kinds}")
    if report["missed_targets"]:
        lines.append(f"  missed: {', '.join(report['missed_targets'])}")
    lines.append(f"  time: {report['timings_s']}")
    lines.append("  outputs:")
    lines += [f"    {name:<8} {path}" for name, path in report["outputs"].items()]
    lines.append(f"  shards: {report['run']}/scenes/*/  (probability.zarr, detections.parquet/.csv/.kml)")
    return "\n".join(lines)
