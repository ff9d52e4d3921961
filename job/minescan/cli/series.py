"""`minescan series`: the MapBiomas mining time series, one verb per stage."""

from __future__ import annotations

from pathlib import Path

import click

from ..training.cli import _grouped, _strategy_options


@click.group()
def series():
    """The MapBiomas mining time series: feature cubes, the U-Net, filters, substances, hectares.

    \b
    Example:
      minescan series cube mosaics/ --out region.zarr
      minescan series train --cube region.zarr --labels labels/ --out models/series
      minescan series predict region.zarr --model models/series --out classes.zarr
      minescan series filter classes.zarr --out filtered.zarr
      minescan series substance filtered.zarr --register anm.tsv --out coded.zarr
      minescan series stats coded.zarr --regions lands.geojson:name --out stats/
    """


@series.command("stack-maps")
@click.argument("maps", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(), help="Class cube to write (zarr v3).")
@click.option("--mining-value", type=click.IntRange(0, 65535), default=30, show_default=True,
              help="Value that marks mining in the maps (MapBiomas: 30); nodata stays no data.")
@click.option("--overwrite", is_flag=True, help="Replace an existing class cube at --out.")
def stack_maps(maps, out, mining_value, overwrite):
    """Stack annual class GeoTIFFs (files or folders; one per year, the year in the file name)
    into a class cube. Every year must be on the same grid.

    \b
    Example:
      minescan series stack-maps maps/ --out classes.zarr
    """
    from ..errors import InputError
    from ..series.cube_io import stack_class_geotiffs, write_class_cube

    files = []
    for item in map(Path, maps):
        if item.is_dir():
            files += sorted(item.glob("*.tif")) + sorted(item.glob("*.tiff"))
        else:
            files.append(item)
    if Path(out).exists() and not overwrite:
        raise InputError(f"{out} exists and won't be overwritten without --overwrite")
    cube, grid = stack_class_geotiffs(files, mining_value=mining_value)
    write_class_cube(out, cube, grid, attrs={"source": "annual class maps"})
    click.echo(f"{out}: {len(grid.years)} years {grid.years[0]}–{grid.years[-1]}, {grid.width}×{grid.height} px")


@series.command("filter")
@click.argument("cube", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(), help="Filtered class cube to write (zarr v3).")
@click.option("--scheduler", metavar="ADDRESS", help="Run on the Dask scheduler at ADDRESS (tcp://host:8786).")
@click.option("--local-cluster", type=click.IntRange(1), metavar="N",
              help="Run on a new local Dask cluster of N worker processes.")
@click.option("--threads", type=click.IntRange(1), help="In-process threads when no cluster is given (default: all cores).")
@click.option("--chunk", type=click.IntRange(16, 8192), default=512, show_default=True,
              help="Window edge in pixels: each task holds all years of one window plus a halo.")
@click.option("--min-pixels", type=click.IntRange(1), default=10, show_default=True,
              help="Smallest mining patch kept (ATBD §5.3).")
@click.option("--min-fraction", type=click.FloatRange(0, 1), default=0.10, show_default=True,
              help="Least share of the years mapped as mining (ATBD §5.4).")
@click.option("--overwrite", is_flag=True, help="Replace an existing class cube at --out.")
def filter_cmd(cube, out, scheduler, local_cluster, threads, chunk, min_pixels, min_fraction, overwrite):
    """Gap-fill, temporal, spatial and frequency filters over CUBE, chunked on Dask.

    \b
    Example:
      minescan series filter classes.zarr --out filtered.zarr --local-cluster 4
    """
    from ..series.chunked import SeriesFilterConfig, dask_client, filter_cube

    config = SeriesFilterConfig(chunk=chunk, min_pixels=min_pixels, min_fraction=min_fraction)
    with dask_client(scheduler, local_cluster) as client:
        summary = filter_cube(cube, out, config, client=client, threads=threads, overwrite=overwrite)
    changed = ", ".join(f"{name} {n}" for name, n in summary.counts.items())
    click.echo(f"{out}: {summary.shape[0]} years × {summary.shape[1]}×{summary.shape[2]} px in "
               f"{summary.windows} windows; values changed: {changed}")


@series.command("substance")
@click.argument("cube", type=click.Path(file_okay=False))
@click.option("--register", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The ANM dam register (TSV), or an occurrence table (CSV/TSV) or vector file of points/polygons.")
@click.option("--out", required=True, type=click.Path(), help="Coded class cube to write (zarr v3).")
@click.option("--substance-column", help="Column naming the substance (not needed for the ANM register).")
@click.option("--type-column", help="Column saying garimpo or industrial (mine) for each entry.")
@click.option("--lon-column", help="Longitude column of a CSV/TSV (default: lon/longitude/x).")
@click.option("--lat-column", help="Latitude column of a CSV/TSV (default: lat/latitude/y).")
@click.option("--default-type", type=click.Choice(["industrial", "garimpo"]), default="industrial",
              show_default=True, help="Type of entries without a type column or value.")
@click.option("--overwrite", is_flag=True, help="Replace an existing class cube at --out.")
def substance(cube, register, out, substance_column, type_column, lon_column, lat_column, default_type, overwrite):
    """Code each mining patch of CUBE with the Table 3 class_id of the register entries in it.

    \b
    Example:
      minescan series substance filtered.zarr --register ocorrencias.csv \\
          --substance-column SUBSTANCIA --type-column STATUS_ECONOMICO --out coded.zarr
    """
    from ..series.substance import RegisterColumns, code_cube, read_register

    columns = RegisterColumns(substance=substance_column, kind=type_column, lon=lon_column, lat=lat_column,
                              default_kind=default_type)
    summary = code_cube(cube, out, read_register(register, columns), overwrite=overwrite)
    unknown = sum(summary.unknown_substances.values())
    click.echo(f"{out}: {sum(summary.patches_coded.values())} patch-years coded from {summary.usable} of "
               f"{summary.entries} register entries ({unknown} without a Table 3 class, "
               f"{summary.outside} outside the cube)")


@series.command("stats")
@click.argument("cube", type=click.Path(file_okay=False))
@click.option("--regions", "layers", multiple=True, metavar="FILE[:COLUMN]",
              help="Polygon layer of regions (repeatable); COLUMN names them (default: name/nome/...).")
@click.option("--out", required=True, type=click.Path(), help="Folder for mining_area.csv/.parquet and figures/.")
@click.option("--no-figures", is_flag=True, help="Skip the trend figure of each region.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder of statistics.")
def stats(cube, layers, out, no_figures, overwrite):
    """Hectares of mining per year × class_id × region of CUBE, from true pixel areas.

    \b
    Example:
      minescan series stats coded.zarr --out stats/ \\
          --regions indigenous_territories_impacts.geojson:name_field --regions biomes.gpkg:nome
    """
    from ..series.stats import mining_stats, parse_layer

    summary = mining_stats(cube, out, [parse_layer(text) for text in layers], figures=not no_figures,
                           overwrite=overwrite)
    click.echo(f"{out}: {summary.rows} rows for {summary.regions} regions, {summary.figures} figures")


@series.command("bench-filters")
@click.option("--size", type=click.IntRange(64), default=10_000, show_default=True, help="Cube edge in pixels.")
@click.option("--years", type=click.IntRange(3), default=20, show_default=True, help="Years in the cube.")
@click.option("--chunk", type=click.IntRange(16, 8192), default=512, show_default=True, help="Window edge in pixels.")
@click.option("--threads", type=click.IntRange(1), help="Filter threads (default: all cores).")
@click.option("--out", default="bench-series", show_default=True, type=click.Path(file_okay=False),
              help="Where the synthetic cube (cached), the filtered cube and bench-series.json go.")
def bench_filters(size, years, chunk, threads, out):
    """Benchmark the chunked filters on a synthetic cube: wall time, peak RSS, memory bound.

    \b
    Example:
      minescan series bench-filters --size 2048 --years 20 --out bench-series
    """
    from ..series.bench import format_filter_bench, run_filter_bench

    click.echo(format_filter_bench(run_filter_bench(out, size, years, chunk, threads)))


# --- the feature cube, the U-Net and its evaluation ----------------------------------------


def _years(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[int] | None:
    """'1985-2019' or '1990,1995,2000' → years."""
    if not value:
        return None
    try:
        if "-" in value:
            first, last = (int(v) for v in value.split("-"))
            return list(range(first, last + 1))
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not FIRST-LAST or a comma list of years") from None


def _names(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


def _window_options(f):
    options = [
        click.option("--window", type=click.IntRange(32), default=512, show_default=True,
                     help="Prediction window, px (the method's 512)."),
        click.option("--step", type=click.IntRange(16), default=256, show_default=True,
                     help="Window step = the kept centre, px (the method's 256)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


#: the loop's settings with the U-Net's defaults (batch 8, Adam 1e-3), validated with the config
_series_settings_options = _grouped("settings", dict, [
    click.option("--epochs", type=click.IntRange(1), default=30, show_default=True),
    click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="Global batch size."),
    click.option("--lr", "learning_rate", type=float, default=None, help="Adam learning rate [default: 1e-3]."),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--deterministic", is_flag=True, help="TensorFlow op determinism (slower)."),
    click.option("--mixed-precision", is_flag=True, help="float16 compute (GPU only)."),
])


@series.command("cube")
@click.argument("mosaics", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(), help="Feature cube to write (zarr v3).")
@click.option("--tile", help="Pick one tile's files (file stem) where an export holds several per year.")
@click.option("--overwrite", is_flag=True, help="Replace an existing cube at --out.")
def cube_cmd(mosaics, out, tile, overwrite):
    """Stack annual Landsat mosaics under MOSAICS into a feature cube (year, y, x, feature).

    MOSAICS holds one GeoTIFF per year, the year in its path: `minescan acquire landsat`
    exports (YEAR/TILE.tif, the six features) or any mosaics with bands named green, red,
    nir, swir1 (MNDWI, NDVI and NDSI are computed). No-data stays NaN; every year must be
    on one grid.

    \b
    Example:
      minescan series cube exports/landsat --tile r0012c0034 --out region.zarr
    """
    from ..series.cube import build_cube

    grid = build_cube(mosaics, out, tile=tile, overwrite=overwrite)
    click.echo(f"{out}: {len(grid.years)} years {grid.years[0]}–{grid.years[-1]}, "
               f"{grid.width}×{grid.height} px, 6 features")


@series.command("train")
@click.option("--cube", type=click.Path(exists=True, file_okay=False), help="Feature cube to train on (with --labels).")
@click.option("--labels", type=click.Path(exists=True, file_okay=False),
              help="Per-year label masks on the cube's grid (year in the name; 1 mining, 0 not, 255 unlabelled).")
@click.option("--images", type=click.Path(exists=True, file_okay=False),
              help="Or a folder of img_NNN.tif + mask_NNN.tif pairs.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Model directory to write.")
@click.option("--bands", callback=_names, help="Input features/bands, comma-separated [default: all of the input].")
@click.option("--width", type=click.IntRange(1), default=64, show_default=True,
              help="Filters of the first U-Net block (the method's 64: 31.1 M parameters).")
@click.option("--tile", type=click.IntRange(16), default=256, show_default=True, help="Training tile edge, px.")
@click.option("--tiles-per-scene", type=click.IntRange(1), default=16, show_default=True,
              help="Tiles drawn per scene (per year of a cube).")
@click.option("--positive-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of tiles centred near a mining pixel.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="p(mining) at or above which a pixel is mining.")
@click.option("--folds", type=click.IntRange(0), default=0, show_default=True,
              help="k-fold cross-validation over the scenes of --images first (0: none).")
@_series_settings_options
@click.option("--name", default=None, help="Model name [default: series].")
@click.option("--model-version", default=None, help="Model version [default: UTC timestamp].")
@click.option("--max-steps", type=int, default=None, hidden=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
@_window_options
@_strategy_options
def train_cmd(cube, labels, images, out, bands, width, tile, tiles_per_scene, positive_share, threshold,
              folds, settings, name, model_version, max_steps, overwrite, window, step, distribution):
    """Train the MapBiomas U-Net on a cube + label masks, or on image/mask pairs.

    \b
    Example:
      minescan series train --cube region.zarr --labels labels/ --out models/series
      minescan series train --images tailings_seg_dev/ --folds 4 --width 16 --tile 128 \\
          --epochs 20 --out models/series-rgb
    """
    from ..series.train import SeriesTrainConfig, run_series_training
    from ..training.progress import EpochReporter
    from ..validation import validate

    built, chief = distribution.resolve()
    config = validate(SeriesTrainConfig, {
        "out": out, "cube": cube, "labels": labels, "images": images, "bands": bands, "width": width,
        "tile": tile, "tiles_per_scene": tiles_per_scene, "positive_share": positive_share,
        "threshold": threshold, "folds": folds, "window": window, "step": step, "name": name,
        "version": model_version, "strategy": type(built).__name__, "max_steps": max_steps,
        "overwrite": overwrite, "settings": settings}, "series train config")
    with EpochReporter(folds + 1, settings["epochs"]) as reporter:
        card = run_series_training(config, built, write=chief, on_epoch=reporter)
    if card is None:
        return
    click.echo(f"wrote {out} ({card.ref}; {card.training['architecture']['parameters']:,} parameters)")
    if "cv" in card.metrics:
        unet, base = card.metrics["cv"]["unet"], card.metrics["cv"]["baseline"]
        click.echo(f"{card.metrics['protocol']}, held-out pixels: U-Net IoU {unet['iou']:.3f} F1 "
                   f"{unet['f1']:.3f}; baseline ({card.training['baseline']['index']}) IoU "
                   f"{base['iou']:.3f} F1 {base['f1']:.3f}")
        click.echo(f"report: {out.rstrip('/')}/report/README.md")


@series.command("predict")
@click.argument("cube", type=click.Path(exists=True, file_okay=False))
@click.option("--model", "model_dir", required=True, help="Series model directory (local or gs://).")
@click.option("--out", required=True, type=click.Path(), help="Class cube to write (zarr v3).")
@click.option("--years", callback=_years, help="FIRST-LAST or a comma list [default: every year of CUBE].")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="p(mining) for MINING [default: the model's].")
@_window_options
@click.option("--overwrite", is_flag=True, help="Replace an existing class cube at --out.")
def predict_cmd(cube, model_dir, out, years, threshold, window, step, overwrite):
    """Classify every year of a feature CUBE with a series U-Net into a class cube.

    Seamless: 512-px windows stepped by 256 keep their centres. A pixel with no
    observation that year is NODATA (255), for the gap-fill filter.

    \b
    Example:
      minescan series predict region.zarr --model models/series --out classes.zarr
    """
    from ..series.predict import predict_cube

    done = predict_cube(cube, model_dir, out, years=years, threshold=threshold, window=window,
                        step=step, overwrite=overwrite)
    click.echo(f"{out}: {len(done)} years {done[0]}–{done[-1]} classified")


@series.command("map")
@click.option("--regions", required=True, help="Text file of feature-cube URIs, one region per line (local or gs://).")
@click.option("--model", "model_dir", required=True, help="Series model directory (local or gs://).")
@click.option("--run", "run", required=True, help="Run directory: regions/<name>/ shards (local or gs://).")
@click.option("--index", type=click.IntRange(0), help="Region index; default: $JOB_COMPLETION_INDEX.")
@_window_options
def map_cmd(regions, model_dir, run, index, window, step):
    """Classify one region of REGIONS into the run (one Kubernetes pod's work).

    \b
    Example:
      JOB_COMPLETION_INDEX=3 minescan series map --regions gs://b/regions.txt \\
          --model gs://b/models/series --run gs://b/runs/series-2024
    """
    from ..batch.runner import INDEX_ENV, index_from_env
    from ..errors import InputError
    from ..series.predict import predict_region

    if index is None:
        index = index_from_env()
    if index is None:
        raise InputError(f"no region index: pass --index N or set {INDEX_ENV}")
    outcome = predict_region(regions, model_dir, run, index, window=window, step=step)
    click.echo(f"{outcome['region']}: {outcome['status']} → {outcome['shard']}")


@series.command("evaluate")
@click.option("--model", "model_dir", required=True, help="Series model directory.")
@click.option("--images", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of img_NNN.tif + mask_NNN.tif pairs.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the scores as JSON here.")
@_window_options
def evaluate_cmd(model_dir, images, json_out, window, step):
    """Pixel IoU, F1, precision, recall per scene and overall, U-Net next to its baseline.

    The baseline is the spectral threshold fitted on the model's own training scenes and
    stored with it.

    \b
    Example:
      minescan series evaluate --model models/series-rgb --images holdout/ --json scores.json
    """
    from ..outputs import write_text_atomic
    from ..series.evaluate import evaluate_images, scores_table
    from ..training.report import json_safe

    result = evaluate_images(model_dir, images, window=window, step=step)
    if json_out:
        import json

        write_text_atomic(json_out, json.dumps(json_safe(result), indent=2) + "\n")
    click.echo(f"{result['model']} on {len(result['scenes'])} scenes of {images} "
               f"(baseline: {result['baseline']['index']}):")
    click.echo(scores_table(result), nl=False)


@series.command("demo")
@click.option("--out", default="demo-series", show_default=True, type=click.Path(file_okay=False),
              help="Where the demo writes its regions, model, cubes and report.")
@click.option("--seed", type=int, default=None, help="Seed of the synthetic regions (default 2024).")
@click.option("--epochs", type=click.IntRange(1), default=None, help="U-Net training epochs (default 12).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out.")
def demo_cmd(out, seed, epochs, overwrite):
    """The whole series branch on two SYNTHETIC 20-year Landsat regions, scored year by year.

    Trains a small U-Net on one region, classifies the other, filters, codes substances from a
    synthetic register, computes hectares, and scores every year against the planted truth,
    before and after the filters. The figures show the branch works end to end, not how the
    method does on real Landsat mosaics.

    \b
    Example:
      minescan series demo --out demo-series
    """
    from dataclasses import replace

    from ..series.demo import SeriesDemoConfig, format_report, run_series_demo

    config = SeriesDemoConfig()
    if seed is not None:
        config = replace(config, seed=seed)
    if epochs is not None:
        config = replace(config, epochs=epochs)
    click.echo(format_report(run_series_demo(out, config, overwrite=overwrite)))
