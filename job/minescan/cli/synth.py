"""`minescan synth`: synthetic Sentinel-2 L1C scenes with planted truth, and training chips."""

from __future__ import annotations

import click

from ..bands import DEFAULT_BANDS, S2_BANDS


def _parse_bands(value: str) -> tuple[str, ...]:
    from ..bands import check_bands

    if value.strip() == "12":
        return DEFAULT_BANDS
    if value.strip() in ("13", "all"):
        return tuple(S2_BANDS)
    try:
        return check_bands([b.strip().upper() for b in value.split(",") if b.strip()])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--bands") from None


def _parse_origin(value: str) -> tuple[float, float]:
    try:
        lon, lat = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not LON,LAT (e.g. -44.0,-20.0)",
                                 param_hint="--origin") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise click.BadParameter(f"{value!r} is outside lon [-180, 180], lat [-90, 90]",
                                 param_hint="--origin")
    return lon, lat


@click.group()
def synth():
    """Make synthetic Sentinel-2-like scenes and chips, or Landsat series (no real imagery needed)."""


@synth.command("scene")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--size", type=click.IntRange(64), required=True, help="Scene side in pixels (10 m each).")
@click.option("--seed", type=int, required=True, help="Same seed, same bytes.")
@click.option("--bands", default="12", show_default=True,
              help="12 (B1–B12 with B10, no B8A), 13/all, or a comma list such as B2,B3,B4,B8.")
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False),
              help="Also write the planted objects as GeoJSON here.")
@click.option("--origin", default="-44.0,-20.0", show_default=True, help="Top-left corner LON,LAT.")
@click.option("--nodata-fraction", type=click.FloatRange(0, 0.5), default=0.0, show_default=True,
              help="Fraction of the scene set to no-data (0) as a corner wedge.")
@click.option("--mines", type=click.IntRange(0), help="Open pits and garimpo (default: by area).")
@click.option("--dams", type=click.IntRange(0), help="Tailings dams (default: by area).")
@click.option("--lookalikes", type=click.IntRange(0),
              help="Water dams, river banks, towns, bare fields (default: by area).")
def scene(out, size, seed, bands, truth_path, origin, nodata_fraction, mines, dams, lookalikes):
    """Write a synthetic scene OUT (GeoTIFF, uint16, EPSG:4326) with mines and look-alikes.

    Example:

    \b
      minescan synth scene area.tif --size 2048 --seed 1 --truth truth.geojson
    """
    from ..synth import synthesize_scene, write_truth_geojson

    truth = synthesize_scene(
        out, size=size, seed=seed, bands=_parse_bands(bands), origin_lonlat=_parse_origin(origin),
        n_mines=mines, n_dams=dams, n_lookalikes=lookalikes, nodata_fraction=nodata_fraction,
    )
    if truth_path:
        write_truth_geojson(truth, truth_path)
    click.echo(
        f"{out}: {size}x{size} px x {len(truth.bands)} bands, {truth.area_km2:.1f} km², "
        f"{len(truth.targets)} targets, {len(truth.lookalikes)} look-alikes"
        + (f"; truth in {truth_path}" if truth_path else "")
    )


@synth.command("chips")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--n", "n", type=click.IntRange(1), required=True, help="Number of chips (balanced classes).")
@click.option("--seed", type=int, required=True, help="Seeds the scenes and the sampling.")
@click.option("--kind", type=click.Choice(["discovery", "impact"]), default="discovery",
              show_default=True, help="discovery: mine/not_mine 201 px; impact: high/low/no_ore 21 px.")
@click.option("--scene-size", type=click.IntRange(400), default=1536, show_default=True,
              help="Side of the synthetic scenes the chips are cut from (px).")
@click.option("--scenes", "n_scenes", type=click.IntRange(1), default=3, show_default=True,
              help="How many synthetic scenes to cut chips from.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUT.")
def chips(out, n, seed, kind, scene_size, n_scenes, overwrite):
    """Write N training chips in the authors' layout OUT/<class>/<class>_00001.tif.

    Example:

    \b
      minescan synth chips chips/discovery --n 400 --seed 3
      minescan synth chips chips/impact --n 900 --seed 4 --kind impact
    """
    from ..synth import write_chip_set

    counts = write_chip_set(out, n=n, seed=seed, kind=kind, scene_size=scene_size,
                            n_scenes=n_scenes, overwrite=overwrite)
    click.echo(f"{out}: {n} {kind} chips from {n_scenes} synthetic scenes: "
               + ", ".join(f"{k} {v}" for k, v in counts.items()))


@synth.command("landsat")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--size", type=click.IntRange(64, 4096), default=320, show_default=True,
              help="Region side in 30 m pixels.")
@click.option("--years", default="2000-2019", show_default=True, help="FIRST-LAST, 20 to 40 years.")
@click.option("--seed", type=int, required=True, help="Same seed, same files.")
@click.option("--origin", default="-56.4,-6.2", show_default=True, help="Top-left corner LON,LAT.")
@click.option("--mines", type=click.IntRange(0), help="Pits, quarries and garimpos (default: by area).")
@click.option("--lookalikes", type=click.IntRange(0),
              help="Water dams, sand banks, towns, bare fields (default: by area).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty OUT.")
def landsat(out, size, years, seed, origin, mines, lookalikes, overwrite):
    """Write a SYNTHETIC Landsat annual series OUT/mosaics/landsat_<year>.tif with per-year
    truth masks OUT/truth/truth_<year>.tif and the planted objects' histories.

    \b
    Example:
      minescan synth landsat region/ --seed 7 --years 1990-2019
      minescan series cube region/mosaics --out region.zarr
    """
    from ..synth.landsat import synthesize_series

    try:
        first, last = (int(v) for v in years.split("-"))
    except ValueError:
        raise click.BadParameter(f"{years!r} is not FIRST-LAST", param_hint="--years") from None
    truth = synthesize_series(out, size=size, first_year=first, last_year=last, seed=seed,
                              origin_lonlat=_parse_origin(origin), n_mines=mines,
                              n_lookalikes=lookalikes, overwrite=overwrite)
    click.echo(f"{out}: SYNTHETIC {size}x{size} px (30 m) x {len(truth.years)} years, "
               f"{len(truth.targets)} mines, {len(truth.objects) - len(truth.targets)} look-alikes; "
               f"mining in {truth.mining.mean():.1%} of pixel-years, clouds in {truth.cloudy.mean():.1%}")


@synth.command("years")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--size", type=click.IntRange(1000), default=1400, show_default=True, help="Scene side in pixels.")
@click.option("--seed", type=int, required=True, help="Same seed, same bytes.")
@click.option("--new", "n_new", type=click.IntRange(0), default=2, show_default=True, help="Mines opened between the years.")
@click.option("--grown", "n_grown", type=click.IntRange(0), default=2, show_default=True, help="Mines that grew.")
@click.option("--vanished", "n_vanished", type=click.IntRange(0), default=2, show_default=True,
              help="Mines abandoned and revegetated.")
def years(out, size, seed, n_new, n_grown, n_vanished):
    """Write the same synthetic area in two years (OUT/before.tif, OUT/after.tif) with truth.

    Example: minescan synth years demo-years --seed 11, then scan or run-local each year,
    reduce both runs and `minescan diff` them; OUT/changes.json holds the planted changes.
    """
    import json
    from pathlib import Path

    from ..synth import write_truth_geojson
    from ..synth.years import synthesize_years

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    result = synthesize_years(folder / "before.tif", folder / "after.tif", size=size, seed=seed,
                              n_new=n_new, n_grown=n_grown, n_vanished=n_vanished)
    write_truth_geojson(result.before, folder / "before.truth.geojson")
    write_truth_geojson(result.after, folder / "after.truth.geojson")
    (folder / "changes.json").write_text(json.dumps(result.changes, indent=1) + "\n", encoding="utf-8")
    counts = {c: list(result.changes.values()).count(c) for c in ("new", "grown", "vanished", "unchanged")}
    click.echo(f"{out}: two SYNTHETIC years of {size}x{size} px; planted targets {counts}")
