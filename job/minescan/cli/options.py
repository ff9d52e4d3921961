"""Click options shared by the verbs that scan and the verbs that build sites."""

from __future__ import annotations

import click

from ..scan.backends import BACKEND_CHOICES
from ..scan.config import ScanConfig
from ..validation import load_yaml_or_json, validate


def scan_options(f):
    """Model and scan-config options, as one decorator."""
    options = [
        click.option("--discovery-model", type=click.Path(), help="Discovery model directory (default: bundled demo model)."),
        click.option("--impact-model", type=click.Path(), help="Impact model directory (default: bundled demo model)."),
        click.option("--registry", help="Model registry (local or gs://) whose --channel names the models."),
        click.option("--channel", help="Follow this registry channel (e.g. prod) instead of model directories."),
        click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="Scan config (YAML/JSON, keys of ScanConfig)."),
        click.option("--threshold", type=click.FloatRange(0, 1), help="p(mine) for a candidate (default: the model's, 0.6)."),
        click.option("--keep-no-ore", is_flag=True, help="Keep candidates classified no_ore, flagged kept=false, instead of dropping them."),
        click.option("--memory-budget-mb", type=click.IntRange(64), help="Working memory for one discovery sub-tile (MiB)."),
        click.option("--backend", type=click.Choice(BACKEND_CHOICES), help="Who runs the networks (default auto: the fastest installed)."),
        click.option("--input-scale", type=click.FloatRange(0, min_open=True), help="Multiply pixel values by this first (e.g. 10000 for reflectance 0–1)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def scan_config_from(config_file, threshold, keep_no_ore, memory_budget_mb,
                     discovery_model=None, impact_model=None, input_scale=None, backend=None,
                     registry=None, channel=None) -> ScanConfig:
    """One ScanConfig from a file, then command-line overrides; validated once."""


    data: dict = {}
    if config_file:
        data.update(load_yaml_or_json(config_file))
    if discovery_model:
        data["discovery_model"] = discovery_model
    if impact_model:
        data["impact_model"] = impact_model
    if registry:
        data["registry"] = registry
    if channel:
        data["channel"] = channel
    if threshold is not None:
        data["threshold"] = threshold
    if keep_no_ore:
        data["drop_no_ore"] = False
    if memory_budget_mb is not None:
        data["memory_budget_mb"] = memory_budget_mb
    if backend is not None:
        data["backend"] = backend
    if input_scale is not None:
        data["input_scale"] = input_scale
    return validate(ScanConfig, data, f"scan config{' ' + str(config_file) if config_file else ''} is invalid")


def sites_options(f):
    """Options of the sites stage (registers, protected land, regions, reviews), as one decorator.

    The command receives them as keyword arguments; `sites_options_from(**kwargs)` turns
    them into one validated SitesOptions.
    """
    options = [
        click.option("--register", "registers", multiple=True, metavar="FILE",
                     help="Official register to match sites against (repeatable): the ANM dam register as "
                          "published (TSV, DMS coordinates), a CSV of points, or a GeoPackage/GeoJSON/"
                          "shapefile of points or polygons (concessions)."),
        click.option("--register-id-col", help="Entry id column of CSV/vector registers (default: id, else row number)."),
        click.option("--register-name-col", help="Entry name column of CSV/vector registers (default: name/nome)."),
        click.option("--register-ore-col", help="Ore column of CSV/vector registers (default: ore/minerio/substancia)."),
        click.option("--register-lon-col", help="Longitude column of CSV registers (default: lon/longitude/x)."),
        click.option("--register-lat-col", help="Latitude column of CSV registers (default: lat/latitude/y)."),
        click.option("--register-layer", help="Layer of multi-layer vector registers (GeoPackage)."),
        click.option("--match-m", type=click.FloatRange(0), help="Match distance (m) for point register entries "
                     "[default: the register's positional accuracy: ANM 500, other points 250; polygons must intersect]."),
        click.option("--protected", "protected", multiple=True, metavar="FILE",
                     help="Protected or indigenous land polygons (repeatable; any CRS, which the file must declare)."),
        click.option("--protected-name-col", help="Area name column (default: name/nome/terrai_nom/nome_uc1/...)."),
        click.option("--protected-type-col", help="Area type column (default: type/tipo/categoria/...)."),
        click.option("--protected-type", help="Type of areas whose type is empty, e.g. 'indigenous territory' "
                     "[default: the file's stem]."),
        click.option("--regions", type=str, metavar="FILE", help="Regions for per-region totals (states, municipalities, biomes)."),
        click.option("--regions-name-col", help="Region name column (default: name/nome/nm_mun/nm_uf/...)."),
        click.option("--reviews", type=str, metavar="FILE",
                     help="A reviewed sites table (review, review_note columns): verdicts carried to this run's sites."),
        click.option("--previous", type=str, metavar="RUN",
                     help="An earlier run (local or gs://): what changed since its national sites goes into "
                          "national/changes/ and the report (as `minescan diff` computes it)."),
        click.option("--link-m", type=click.FloatRange(0, min_open=True),
                     help="Detections closer than this (metres, on the ellipsoid) form one site [default: 800]."),
        click.option("--sites-config", type=click.Path(exists=True, dir_okay=False),
                     help="Sites config (YAML/JSON, keys of SitesOptions: per-register columns and accuracy)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def sites_options_from(*, registers=(), register_id_col=None, register_name_col=None, register_ore_col=None,
                       register_lon_col=None, register_lat_col=None, register_layer=None, match_m=None,
                       protected=(), protected_name_col=None, protected_type_col=None, protected_type=None,
                       regions=None, regions_name_col=None, reviews=None, link_m=None, previous=None,
                       sites_config=None):
    """One SitesOptions from a --sites-config file, then the command-line values."""
    from ..sites.national import options_from_file

    columns = dict(id_column=register_id_col, name_column=register_name_col, ore_column=register_ore_col,
                   lon_column=register_lon_col, lat_column=register_lat_col, layer=register_layer)
    columns = {k: v for k, v in columns.items() if v is not None}
    area = dict(name_column=protected_name_col, type_column=protected_type_col, type=protected_type)
    area = {k: v for k, v in area.items() if v is not None}
    return options_from_file(sites_config, {
        "registers": [{"path": path, **columns} for path in registers],
        "protected": [{"path": path, **area} for path in protected],
        "regions": {"path": regions, **({"name_column": regions_name_col} if regions_name_col else {})}
        if regions else None,
        "reviews": reviews,
        "match_m": match_m,
        "link_m": link_m,
        "previous": previous,
    })
