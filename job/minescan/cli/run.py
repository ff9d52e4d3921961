"""`minescan map`, `reduce` and `run-local`: the cloud batch job's verbs."""

from __future__ import annotations

import click

from .options import scan_config_from, scan_options, sites_options, sites_options_from


@click.command()
@click.option("--manifest", required=True, help="Scene manifest (JSON or one URI per line), local or gs://.")
@click.option("--run", "run", required=True, help="Run directory (local or gs://).")
@click.option("--index", type=click.IntRange(0), help="Scene index; default: $JOB_COMPLETION_INDEX.")
@scan_options
def map_cmd(manifest, run, index, discovery_model, impact_model, registry, channel, config_file, threshold, keep_no_ore, memory_budget_mb, backend, input_scale):
    """Scan one scene of MANIFEST into the run (one Kubernetes pod's work).

    Example:

    \b
      minescan map --manifest gs://bucket/s2/2019/manifest.json --run gs://bucket/runs/2019 --index 7
      JOB_COMPLETION_INDEX=7 minescan map --manifest manifest.json --run runs/2019
    """
    from ..batch.runner import INDEX_ENV, index_from_env, map_scene
    from ..errors import InputError

    if index is None:
        index = index_from_env()
    if index is None:
        raise InputError(f"no scene index: pass --index N or set {INDEX_ENV}")
    config = scan_config_from(config_file, threshold, keep_no_ore, memory_budget_mb,
                              discovery_model=discovery_model, impact_model=impact_model,
                              input_scale=input_scale, backend=backend,
                              registry=registry, channel=channel)
    outcome = map_scene(manifest, run, index, config=config)
    click.echo(f"{outcome.scene_id}: {outcome.status} ({outcome.counts.get('detections', 0)} detections) → {outcome.shard}")


@click.command()
@click.option("--run", required=True, help="Run directory (local or gs://).")
@click.option("--allow-missing", is_flag=True, help="Reduce even if some scenes have no committed shard.")
@sites_options
def reduce_cmd(run, allow_missing, **sites):
    """Merge a run's committed scene shards into national sites.

    Sites get footprints, stable place-derived ids, register matches, protected-land and
    region overlays and carried-over review verdicts (docs/SITES.md). Example:

    \b
      minescan reduce --run gs://bucket/runs/2019 \\
        --register anm_barragens_mineracao_2019.tsv \\
        --protected terras_indigenas.gpkg --protected-type "indigenous territory" \\
        --regions municipios.gpkg --reviews reviewed_sites.csv
      minescan reduce --run runs/2019 --allow-missing --link-m 600
    """
    from ..batch.runner import reduce_run

    out = reduce_run(run, allow_missing=allow_missing, sites=sites_options_from(**sites))
    click.echo(f"{out.n_sites} sites from {out.n_detections} detections in {out.n_scenes} scenes → {out.national}")
    if out.missing:
        click.echo(f"missing scenes (index:id): {', '.join(out.missing)}", err=True)


@click.command()
@click.option("--manifest", required=True, help="Scene manifest (JSON or one URI per line).")
@click.option("--run", "run", required=True, help="Run directory (local or gs://).")
@click.option("--parallel", type=click.IntRange(1), default=1, show_default=True, help="Map processes at once.")
@click.option("--retries", type=click.IntRange(0), default=2, show_default=True, help="Retries per index for non-permanent failures.")
@click.option("--allow-missing", is_flag=True, help="Reduce even if some indices failed for good.")
@scan_options
@sites_options
def run_local_cmd(manifest, run, parallel, retries, allow_missing, discovery_model, impact_model, registry, channel,
                  config_file, threshold, keep_no_ore, memory_budget_mb, backend, input_scale, **sites):
    """Run the map for every scene in local processes (as pods would), then the reduce.

    Example:

    \b
      minescan run-local --manifest scenes.txt --run runs/r1 --parallel 2
      minescan run-local --manifest scenes.json --run runs/r1 --register anm.tsv --protected ti.gpkg
    """
    from ..batch.runner import run_local

    map_args = _forward(discovery_model=discovery_model, impact_model=impact_model, registry=registry,
                        channel=channel, config=config_file, threshold=threshold,
                        memory_budget_mb=memory_budget_mb, input_scale=input_scale, backend=backend)
    if keep_no_ore:
        map_args.append("--keep-no-ore")
    codes, out = run_local(manifest, run, parallel=parallel, retries=retries, map_args=map_args,
                           allow_missing=allow_missing, sites=sites_options_from(**sites))
    click.echo(f"{sum(c == 0 for c in codes.values())}/{len(codes)} scenes mapped; "
               f"{out.n_sites} sites → {out.national}")


def _forward(**options) -> list[str]:
    args: list[str] = []
    for name, value in options.items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    return args
