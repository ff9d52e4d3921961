"""`minescan scan`: one scene file in, one shard directory out."""

from __future__ import annotations

import click

from .options import scan_config_from, scan_options


@click.command()
@click.argument("scene", type=str)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory (local or gs://) for this scene's shard.")
@click.option("--scene-id", help="Id recorded in every detection (default: file name without extension).")
@click.option("--overwrite", is_flag=True, help="Replace a shard that is already committed in --out.")
@scan_options
def scan(scene, out, scene_id, overwrite, discovery_model, impact_model, registry, channel, config_file, threshold, keep_no_ore, memory_budget_mb, backend, input_scale):
    """Scan SCENE (a Sentinel-2 GeoTIFF) for mines and tailings dams.

    Writes probability.zarr, detections.parquet/.csv/.kml and, last, _SUCCESS.json to --out.

    Example:

    \b
      minescan scan S2_2019_r0042c0017.tif --out results/r0042c0017
      minescan scan gs://bucket/s2/scene.tif --out gs://bucket/shards/scene --threshold 0.7
    """
    from ..batch.shard import scan_to_shard

    config = scan_config_from(config_file, threshold, keep_no_ore, memory_budget_mb,
                              discovery_model=discovery_model, impact_model=impact_model,
                              input_scale=input_scale, backend=backend,
                              registry=registry, channel=channel)
    result = scan_to_shard(scene, out, config=config, scene_id=scene_id, overwrite=overwrite)
    c = result.counts
    click.echo(
        f"{result.scene.scene_id}: {c['detections']} detections "
        f"({c['candidates']} candidates ≥ {result.threshold:g}, {c['dropped_no_ore']} no_ore) "
        f"in {c['valid_cells']} cells → {out}"
    )
