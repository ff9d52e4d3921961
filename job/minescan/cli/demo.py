"""`minescan demo`: the whole pipeline on a synthetic area."""

from __future__ import annotations

import click


@click.command()
@click.option("--out", default="demo-out", show_default=True, type=click.Path(file_okay=False), help="Where the demo writes its area, run and report.")
@click.option("--seed", type=int, default=None, help="Seed of the synthetic area (default 2019).")
@click.option("--scenes-per-side", type=click.IntRange(1, 6), default=None, help="Scenes along each side of the area (default 2).")
@click.option("--parallel", type=click.IntRange(1), default=2, show_default=True, help="Map processes at once.")
def demo(out, seed, scenes_per_side, parallel):
    """Synthesise an area with planted mines, dams and look-alikes; scan, reduce, score.

    The imagery is SYNTHETIC: the figures show the pipeline works end to end, not how the
    networks do on real Sentinel-2 scenes.

    Example:

    \b
      minescan demo --out demo-out
      minescan demo --out big-demo --scenes-per-side 3 --seed 7
    """
    from dataclasses import replace

    from ..demo import DemoConfig, format_report, run_demo

    cfg = DemoConfig(parallel=parallel)
    if seed is not None:
        cfg = replace(cfg, seed=seed)
    if scenes_per_side is not None:
        cfg = replace(cfg, scenes_per_side=scenes_per_side)
    click.echo(format_report(run_demo(out, cfg)))
