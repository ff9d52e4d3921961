"""Click options shared by the verbs that scan."""

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
