"""`minescan diff` (what changed between the national sites of two runs) and `bench-reduce`."""

from __future__ import annotations

import click


@click.command()
@click.option("--before", "before", required=True, help="Earlier run directory (local or gs://) with committed national sites.")
@click.option("--after", "after", required=True, help="Later run directory with committed national sites.")
@click.option("--out", required=True, help="New directory for changes.parquet/.geojson/.csv and summary.md/.json.")
@click.option("--min-change-ha", type=click.FloatRange(0),
              help="Smallest area change (ha) that makes a site grown or shrunk [default: 10].")
@click.option("--min-change-frac", type=click.FloatRange(0),
              help="Smallest area change as a fraction of the area before [default: 0.25].")
def diff(before, after, out, min_change_ha, min_change_frac):
    """Sites new, grown, shrunk, vanished and unchanged between two runs.

    Sites are paired by stable id and by footprint overlap; area changes are measured on
    the ellipsoid. Example:

    \b
      minescan diff --before runs/2019 --after runs/2023 --out changes/2019-2023
    """
    from ..batch.national import diff_runs
    from ..sites.diff import DiffOptions

    given = {"min_change_ha": min_change_ha, "min_change_frac": min_change_frac}
    result = diff_runs(before, after, out, DiffOptions(**{k: v for k, v in given.items() if v is not None}))
    counts = ", ".join(f"{n} {name}" for name, n in result.summary["changes"].items())
    click.echo(f"{counts} → {out}")


@click.command()
@click.option("--scenes", "n_scenes", type=click.IntRange(1), default=1000, show_default=True,
              help="Synthetic scene shards in the run (a national run is about 1,000).")
@click.option("--per-scene", type=click.IntRange(1), default=2000, show_default=True, help="Detections per scene.")
@click.option("--out", default="bench-out/reduce", show_default=True, type=click.Path(file_okay=False),
              help="Where the synthetic run (kept for re-runs), its layers and bench-reduce.json go.")
def bench_reduce(n_scenes, per_scene, out):
    """Benchmark the reduce: N synthetic shards with registers, protected land and regions.

    Example: minescan bench-reduce --scenes 1000 --per-scene 2000 (make bench-reduce)
    """
    from ..batch.bench_reduce import format_bench, run_bench

    click.echo(format_bench(run_bench(out, n_scenes, per_scene)))
