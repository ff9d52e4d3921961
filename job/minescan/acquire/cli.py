"""`minescan acquire scenes|chips|landsat`: parse, plan, export (or only show the plan)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date
from typing import Any

import click

log = logging.getLogger(__name__)


def _composite_options(f: Callable) -> Callable:
    options = [
        click.option("--start", default="2018-01-01", show_default=True, help="First day (inclusive)."),
        click.option("--end", default="2020-01-01", show_default=True, help="Last day (exclusive)."),
        click.option("--max-cloud", type=float, default=20.0, show_default=True,
                     help="Keep granules with CLOUDY_PIXEL_PERCENTAGE ≤ this."),
        click.option("--cloud-score-plus/--no-cloud-score-plus", default=False, show_default=True,
                     help="Also mask pixels with Cloud Score+ cs_cdf below --cs-threshold."),
        click.option("--cs-threshold", type=float, default=0.6, show_default=True),
        click.option("--bands", default=None, help="Comma-separated bands (default B1..B12 with B10, no B8A)."),
    ]
    return functools.reduce(lambda g, opt: opt(g), reversed(options), f)


def _export_options(f: Callable) -> Callable:
    options = [
        click.option("--bucket", "destination", required=True,
                     help="gs://bucket/prefix the files go under."),
        click.option("--project", default=None, help="Earth Engine Cloud project (default: credentials')."),
        click.option("--max-concurrent", type=int, default=10, show_default=True,
                     help="Tasks submitted and not finished at once."),
        click.option("--poll-seconds", type=float, default=30.0, show_default=True),
        click.option("--retries", type=int, default=2, show_default=True, help="Resubmissions of a failed task."),
        click.option("--priority", type=int, default=None, help="Earth Engine task priority (0–9999)."),
        click.option("--dry-run", is_flag=True, help="Plan only: no credentials, nothing submitted."),
        click.option("--json", "json_out", default=None, help="Write the plan (grid, graph, requests) here."),
    ]
    return functools.reduce(lambda g, opt: opt(g), reversed(options), f)


def _composite_cfg(kw: dict[str, Any]):
    from ..bands import DEFAULT_BANDS
    from .config import CompositeConfig, validated

    bands = tuple(b.strip() for b in kw["bands"].split(",")) if kw["bands"] else DEFAULT_BANDS
    return validated(CompositeConfig, start=_date(kw["start"], "--start"), end=_date(kw["end"], "--end"),
                     max_cloud_pct=kw["max_cloud"], cloud_score_plus=kw["cloud_score_plus"],
                     cs_threshold=kw["cs_threshold"], bands=bands)


def _export_cfg(kw: dict[str, Any]):
    from .config import ExportConfig, validated

    return validated(ExportConfig, destination=kw["destination"], max_concurrent=kw["max_concurrent"],
                     poll_seconds=kw["poll_seconds"], max_retries=kw["retries"], priority=kw["priority"])


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        # a malformed value on the command line is a usage error (exit 2), not bad input
        raise click.BadParameter(f"{text!r} is not a date: use YYYY-MM-DD", param_hint=option) from None


def _session(dry_run: bool, project: str | None) -> AbstractContextManager:
    from contextlib import nullcontext

    from . import session

    if dry_run:
        return session.offline()
    session.initialise(project)
    return nullcontext()


def _finish(plan, kw: dict[str, Any], out, index_uri: str | None = None) -> None:
    from .run import execute, write_plan
    from .tasks import EarthEngineTasks, RunnerConfig, list_objects

    if kw["json_out"]:
        write_plan(plan, kw["json_out"])
        click.echo(f"plan: {len(plan.jobs)} exports written to {kw['json_out']}")
    if kw["dry_run"]:
        if not kw["json_out"]:
            click.echo(f"plan: {len(plan.jobs)} exports (add --json plan.json to see them)")
        return
    runner = RunnerConfig(max_concurrent=out.max_concurrent, poll_seconds=out.poll_seconds,
                          max_retries=out.max_retries)
    counts = execute(plan, EarthEngineTasks(), list_objects(out.destination), runner, index_uri)
    click.echo(f"{plan.kind}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    if plan.manifest_uri:
        click.echo(f"manifest: {plan.manifest_uri}")


@click.group()
def acquire() -> None:
    """Export Sentinel-2 scenes and training chips with Earth Engine (see docs/ACQUIRE.md)."""


@acquire.command()
@click.option("--aoi", "aoi_path", required=True, help="Polygon file (GeoJSON, shapefile, ...).")
@click.option("--aoi-where", default=None, help="Pick AOI features by attribute, e.g. gid_0=BRA.")
@click.option("--manifest", "manifest_uri", default=None, help="Manifest location (default BUCKET/manifest.json).")
@_composite_options
@_export_options
def scenes(aoi_path: str, aoi_where: str | None, manifest_uri: str | None, **kw: Any) -> None:
    """Median composites of every grid scene over the AOI, as uint16 COGs, and their manifest.

    Example:

    \b
      minescan acquire scenes --aoi states.geojson --start 2018-01-01 --end 2020-01-01
        --bucket gs://BUCKET/s2/2019 --project PROJECT
    """
    from .aoi import read_aoi
    from .plan import plan_scenes

    cfg, out = _composite_cfg(kw), _export_cfg(kw)
    area = read_aoi(aoi_path, aoi_where)
    with _session(kw["dry_run"], kw["project"]):
        plan = plan_scenes(area, cfg, out, manifest_uri)
        _finish(plan, kw, out)


@acquire.command()
@click.option("--points", "points_path", required=True,
              help="CSV lon,lat,label[,ore], GeoJSON/shapefile points, or the ANM register (.tsv).")
@click.option("--label", default=None, help="Label for points whose file has none (e.g. mine).")
@click.option("--size", "sizes", type=int, multiple=True, default=(201, 21), show_default=True,
              help="Chip edge in px (odd); repeat for several.")
@click.option("--format", "file_format", type=click.Choice(["GeoTIFF", "TFRecord"], case_sensitive=False),
              default="GeoTIFF", show_default=True)
@_composite_options
@_export_options
def chips(points_path: str, label: str | None, sizes: tuple[int, ...], file_format: str, **kw: Any) -> None:
    """Training chips around labelled points: 201 px (2 km) and 21 px (200 m) squares.

    Example:

    \b
      minescan acquire chips --points anm_barragens.tsv --size 201 --bucket gs://BUCKET/chips --dry-run
    """
    from ..points import read_points
    from .config import ChipConfig, validated
    from .plan import plan_chips

    cfg, out = _composite_cfg(kw), _export_cfg(kw)
    fmt = "GeoTIFF" if file_format.lower() == "geotiff" else "TFRecord"
    chip_cfg = validated(ChipConfig, sizes=sizes, file_format=fmt)
    pts = read_points(points_path, label)
    with _session(kw["dry_run"], kw["project"]):
        plan = plan_chips(pts, cfg, chip_cfg, out)
        _finish(plan, kw, out, index_uri=f"{out.destination}/chips.csv")


@acquire.command()
@click.option("--aoi", "aoi_path", required=True, help="Polygon file (GeoJSON, shapefile, ...).")
@click.option("--aoi-where", default=None, help="Pick AOI features by attribute, e.g. gid_0=BRA.")
@click.option("--first-year", type=int, default=1985, show_default=True)
@click.option("--last-year", type=int, default=2023, show_default=True)
@click.option("--manifest", "manifest_uri", default=None, help="Manifest location (default BUCKET/manifest.json).")
@_export_options
def landsat(aoi_path: str, aoi_where: str | None, first_year: int, last_year: int,
            manifest_uri: str | None, **kw: Any) -> None:
    """Annual Landsat C2 T1 TOA median mosaics (SWIR1, NIR, Red, MNDWI, NDVI, NDSI) for the
    MapBiomas method.

    Example:

    \b
      minescan acquire landsat --aoi para.geojson --first-year 1985 --last-year 2023
        --bucket gs://BUCKET/landsat --project PROJECT
    """
    from .aoi import read_aoi
    from .config import LandsatConfig, validated
    from .plan import plan_landsat

    cfg = validated(LandsatConfig, first_year=first_year, last_year=last_year)
    out = _export_cfg(kw)
    area = read_aoi(aoi_path, aoi_where)
    with _session(kw["dry_run"], kw["project"]):
        plan = plan_landsat(area, cfg, out, manifest_uri)
        _finish(plan, kw, out)
