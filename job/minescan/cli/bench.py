"""`minescan bench`: scan a paper-sized synthetic scene and report the cost of each stage."""

from __future__ import annotations

import click


@click.command()
@click.option("--size", type=click.IntRange(201), default=9216, show_default=True, help="Scene edge in pixels (the paper's is 9216).")
@click.option("--out", default="bench-out", show_default=True, type=click.Path(file_okay=False), help="Where the scene, shard and bench.json go.")
@click.option("--memory-budget-mb", type=click.IntRange(64), help="Sub-tile working memory (default: the scan's).")
def bench(size, out, memory_budget_mb):
    """Benchmark one scan: stage times, km²/s, peak RSS, halo overhead, GFLOP/s.

    Example:

    \b
      minescan bench --size 9216 --out bench-out
      minescan bench --size 4096 --memory-budget-mb 1500
    """
    from ..bench import format_bench, run_bench

    click.echo(format_bench(run_bench(out, size, memory_budget_mb)))
