"""`minescan bench`: scan a paper-sized synthetic scene and report each figure against its target."""

from __future__ import annotations

import json

import click

from ..scan.backends import BACKEND_CHOICES

BACKEND = click.Choice(BACKEND_CHOICES)


@click.group(invoke_without_command=True)
@click.option("--size", type=click.IntRange(201), default=9216, show_default=True, help="Scene edge in pixels (the paper's is 9216).")
@click.option("--out", default="bench-out", show_default=True, type=click.Path(file_okay=False), help="Where the scene, shard and bench.json go.")
@click.option("--memory-budget-mb", type=click.IntRange(64), help="Sub-tile working memory (default: the scan's).")
@click.option("--backend", type=BACKEND, default="auto", show_default=True, help="Who runs the networks.")
@click.pass_context
def bench(ctx, size, out, memory_budget_mb, backend):
    """Benchmark one scan: stage times, km²/s, peak RSS, halo, GFLOP/s vs numpy GEMM, each
    with its target and PASS/FAIL.

    Example:

    \b
      minescan bench --size 9216 --out bench-out      # what `make bench` runs
      minescan bench --size 4096 --memory-budget-mb 1500
      minescan bench backends --size 2478             # the backends side by side
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..bench import format_bench, run_bench

    click.echo(format_bench(run_bench(out, size, memory_budget_mb, backend)))


@bench.command()
@click.option("--size", type=click.IntRange(201), default=2478, show_default=True, help="Discovery input edge, px (2478: the largest sub-tile of the paper scene).")
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True, help="Interleaved rounds; the best counts.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the figures here.")
def backends(size, rounds, json_out):
    """Every installed backend (and TensorFlow XLA, ONNX Runtime) on both networks, side by side.

    Example:

    \b
      minescan bench backends --size 2478 --json bench-out/backends.json
    """
    from ..bench import compare_backends, format_backends

    _report(compare_backends(size=size, rounds=rounds), json_out, format_backends)


@bench.command()
@click.option("--backend", type=BACKEND, default="auto", show_default=True, help="Backend to measure.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the figures here.")
def memory(backend, json_out):
    """Bytes per input pixel the discovery network holds (the scan's memory model).

    Example:

    \b
      minescan bench memory --backend openvino
    """
    from ..bench import measure_memory
    from ..scan.backends import resolve_backend

    _report(measure_memory(resolve_backend(backend)), json_out, lambda r: json.dumps(r, indent=2))


@bench.command()
@click.option("--size", type=click.IntRange(201), default=1024, show_default=True, help="Discovery input edge, px.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the figures here.")
def precision(size, json_out):
    """Largest difference of mixed precision (float16, a GPU option) from float32.

    Example:

    \b
      minescan bench precision --size 1024
    """
    from ..bench import measure_precision

    _report(measure_precision(size), json_out, lambda r: json.dumps(r, indent=2))


def _report(result: dict, json_out: str | None, fmt) -> None:
    if json_out:
        from ..outputs import write_text_atomic

        write_text_atomic(json_out, json.dumps(result, indent=2) + "\n")
    click.echo(fmt(result))


@bench.command()
@click.option("--size", type=click.IntRange(201), default=9216, show_default=True, help="Scene edge in pixels.")
@click.option("--out", default="bench-out", show_default=True, type=click.Path(file_okay=False), help="Where the scene, shards and bench-gpu.json go.")
@click.option("--memory-budget-mb", type=click.IntRange(64), default=16000, show_default=True, help="Host memory for sub-tiles in flight (the device's free memory sizes the tiles).")
def gpu(size, out, memory_budget_mb):
    """The scan on a GPU (tensorflow backend), float32 and mixed precision, in one short run.

    Example:

    \b
      make bench-gpu      # on a GPU node, gpu image: minescan bench gpu --size 9216 --out bench-out
    """
    from ..bench import format_gpu_bench, run_gpu_bench

    click.echo(format_gpu_bench(run_gpu_bench(out, size, memory_budget_mb)))
