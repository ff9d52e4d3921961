"""`minescan series`: the MapBiomas mining time series, one verb per stage."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def series():
    """The MapBiomas mining time series: annual class cubes, filters, substances, hectares.

    \b
    Example:
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
@click.argument("cube", type=click.Path(exists=True, file_okay=False))
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
@click.argument("cube", type=click.Path(exists=True, file_okay=False))
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
@click.argument("cube", type=click.Path(exists=True, file_okay=False))
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
