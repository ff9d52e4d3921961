"""`minescan demo`: the whole pipeline on a synthetic area, with no cloud and no data.

One synthetic area (planted mines, tailings dams and the paper's look-alikes) is cut into
overlapping scenes on a 27-px-aligned grid, as the acquisition grid cuts a country. Each
scene goes through `minescan map` in its own process with JOB_COMPLETION_INDEX set, the
way a Kubernetes pod runs it; then the reduce builds national sites, matches them against a
synthetic register in the ANM register's format that lacks some of the planted mines, and
overlays a synthetic indigenous territory; the sites and their statuses are scored against
the planted truth.

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
    lon, lat = cfg.origin_lonlat
    source = {
        "sensor": "SYNTHETIC scenes drawn by minescan synth (Sentinel-2-like bands; not real imagery)",
        "synthetic": True,
        "aoi": f"a synthetic {cfg.area_px * 10 / 1000:.1f} km square from {lon:.2f}° E, {lat:.2f}° N "
               "(placed in the Quadrilátero Ferrífero, Minas Gerais; the landscape is invented)",
    }
    return Manifest(grid=grid, bands=bands, dtype="uint16", nodata=0, source=source, scenes=entries)


def run_demo(out: str | Path = "demo-out", cfg: DemoConfig | None = None) -> dict:
    """Synthesise, map every scene through the pod entry point, reduce, score. Returns the report."""
    from .batch.manifest import write_manifest
    from .batch.runner import run_local
    from .outputs import read_detections
    from .sites.cluster import score_against_truth
    from .sites.layers import LayerSpec
    from .sites.national import SitesOptions
    from .sites.registers import RegisterSpec
    from .synth import synthesize_scene, write_truth_geojson
    from .synth.register import plant_register, plant_territory

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
    register = plant_register(truth, out / "input" / "register_anm_format.tsv", seed=cfg.seed)
    territory = plant_territory(truth, out / "input" / "territory.geojson")
    manifest = cut_scenes(area, out / "input" / "scenes", cfg)
    manifest_uri, _ = write_manifest(manifest, str(out / "input" / "manifest.json"))
    timings["synthesise"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sites = SitesOptions(registers=(RegisterSpec(path=str(register.path), source="register (SYNTHETIC)"),),
                         protected=(LayerSpec(path=str(out / "input" / "territory.geojson")),))
    _, reduced = run_local(manifest_uri, str(run), parallel=cfg.parallel, retries=1,
                               log_dir=out / "logs", sites=sites)
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
        **status_report(reduced.files, score, truth, register, territory),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "outputs": {k: str(v) for k, v in reduced.files.items()},
        "run": str(run),
    }
    (out / "demo_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def status_report(files: dict[str, str], score, truth, register, territory) -> dict:
    """Registration and territory statuses of the sites (`files`: the reduce's outputs),
    against what was planted.

    A true site (one that found planted targets) should be registered exactly when the
    register lists one of its targets, and on the territory exactly when one of them is.
    """
    import pandas as pd

    from .outputs import SITE_COLUMNS, read_geoparquet
    from .synth.register import TERRITORY_NAME

    sites = read_geoparquet(files["parquet"], SITE_COLUMNS, "demo sites")
    targets_of = score.targets_of_site
    inside = {t.id for t in truth.targets if t.polygon_lonlat.intersects(territory)}
    true = sites["site_id"].isin(list(targets_of))
    expected_registered = sites["site_id"].map(lambda s: bool(set(targets_of.get(s, ())) & set(register.listed)))
    expected_inside = sites["site_id"].map(lambda s: bool(set(targets_of.get(s, ())) & inside))
    unregistered = ~sites["registered"].astype(bool)
    protected = sites["protected"].astype(bool)
    found = {t.id for t in truth.targets} - set(score.missed)
    unmatched = pd.read_csv(files["register_unmatched_csv"])
    return {
        "register": {
            "listed_targets": len(register.listed),
            "missing_targets": len(register.missing),
            "sites_registered": int((~unregistered).sum()),
            "sites_unregistered": int(unregistered.sum()),
            "unregistered_true_sites": int((unregistered & true).sum()),
            "unregistered_false_sites": int((unregistered & ~true).sum()),
            "missing_targets_found": len(found & set(register.missing)),
            "true_sites_status_right": int((true & (expected_registered == ~unregistered)).sum()),
            "true_sites": int(true.sum()),
            "entries_not_detected": len(unmatched),
            "phantom_entries_not_detected": int(unmatched["name"].isin(register.phantom).sum()),
        },
        "territory": {
            "name": TERRITORY_NAME,
            "planted_targets_inside": len(inside),
            "planted_targets_inside_found": len(found & inside),
            "sites_inside": int(protected.sum()),
            "true_sites_inside": int((protected & true).sum()),
            "false_sites_inside": int((protected & ~true).sum()),
            "true_sites_status_right": int((true & (expected_inside == protected)).sum()),
            "unregistered_sites_inside": int((protected & unregistered).sum()),
        },
    }


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
    reg, ter = report["register"], report["territory"]
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
    lines += [
        (f"  register (SYNTHETIC, ANM format): lists {reg['listed_targets']} of the {report['planted_targets']} "
         f"planted targets, lacks {reg['missing_targets']}"),
        (f"    sites: {reg['sites_registered']} registered, {reg['sites_unregistered']} unregistered "
         f"({reg['unregistered_true_sites']} on planted targets the register lacks, "
         f"{reg['unregistered_false_sites']} false sites); of the {reg['missing_targets']} targets it lacks, "
         f"{reg['missing_targets_found']} found"),
        (f"    status right for {reg['true_sites_status_right']}/{reg['true_sites']} true sites; "
         f"registered, not detected: {reg['entries_not_detected']} entries "
         f"({reg['phantom_entries_not_detected']} listed where the imagery shows no mine)"),
        (f"  territory \"{ter['name']}\": {ter['sites_inside']} sites inside ({ter['true_sites_inside']} on planted "
         f"targets, {ter['false_sites_inside']} false; {ter['unregistered_sites_inside']} of them unregistered); "
         f"planted targets inside: {ter['planted_targets_inside']}, found {ter['planted_targets_inside_found']}"),
        f"    status right for {ter['true_sites_status_right']}/{reg['true_sites']} true sites",
    ]
    lines.append(f"  time: {report['timings_s']}")
    lines.append("  outputs:")
    lines += [f"    {name:<22} {path}" for name, path in report["outputs"].items()]
    lines.append(f"  shards: {report['run']}/scenes/*/  (probability.zarr/.tif, detections.parquet/.csv/.kml)")
    outputs = report["outputs"]
    lines.append(f"  open the map (offline):  {outputs['map']}")
    pdf = f"  (PDF: {outputs['report_pdf']})" if "report_pdf" in outputs else "  (no PDF: Chromium not installed)"
    lines.append(f"  read the report:         {outputs['report']}{pdf}")
    return "\n".join(lines)
