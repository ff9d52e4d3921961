"""The national sites of a run: one entry point from detections to everything an analyst reads.

    inputs = load_inputs(SitesOptions(registers=[...], protected=[...]))  # checks files: exit 3
    national = build_national(detections, scenes, inputs)                 # pure: no I/O
    write_national(out_dir, national, ...)                                # minescan.outputs

`build_national` keeps each national cell once (overlapping scenes), drops cells flagged
`no_ore` from the sites (they stay in the detections table, without a site), links the rest
into sites on the ellipsoid, draws each site's footprint, names it after its place, and
sets it against the registers, the protected areas, the regions and the analysts' verdicts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from . import geodesy
from .cluster import (
    DEFAULT_LINK_M,
    cluster_labels,
    dedupe_cells,
    representative_members,
)
from .footprints import SceneGrid, coverage, site_footprints
from .ids import stable_ids
from .layers import LayerSpec, PolygonLayer, read_polygon_layer
from .overlay import M2_PER_HA, area_totals, intersections, per_site
from .registers import Register, RegisterSpec, match_registers, read_register
from .reviews import Reviews, carry_reviews, read_reviews

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

log = logging.getLogger(__name__)


class SitesOptions(BaseModel):
    """How the reduce builds sites: the config of the sites stage, saved with the results."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    link_m: float = Field(DEFAULT_LINK_M, gt=0, description="detections closer than this (m) form one site")
    registers: tuple[RegisterSpec, ...] = Field((), description="official registers to match sites against")
    match_m: float | None = Field(
        None, ge=0, description="match distance (m) for point register entries; default: each register's accuracy")
    protected: tuple[LayerSpec, ...] = Field((), description="protected and indigenous land layers")
    regions: LayerSpec | None = Field(None, description="regions for per-region totals (states, municipalities)")
    reviews: str | None = Field(None, description="a reviewed sites table whose verdicts are carried over")
    gold_impact: str = Field("high", description="impact class of gold ores in registers (the paper's exception)")
    previous: str | None = Field(
        None, description="an earlier run (local or gs://) whose committed national sites this run is compared with")


def options_from_file(path: str | None, overrides: Mapping[str, Any]) -> SitesOptions:
    """SitesOptions from a YAML/JSON file, then command-line values (lists are appended)."""
    from ..validation import load_yaml_or_json, validate

    data: dict[str, Any] = dict(load_yaml_or_json(path)) if path else {}
    for key, value in overrides.items():
        if key in ("registers", "protected"):
            if value:  # appended to the file's; none on the command line keeps the file's
                data[key] = [*data.get(key, []), *value]
        elif value is not None and value != ():
            data[key] = value
    return validate(SitesOptions, data, f"sites config{' ' + str(path) if path else ''} is invalid")


@dataclass(frozen=True)
class SitesInputs:
    """Everything the sites stage reads besides detections, loaded and checked once."""

    options: SitesOptions = field(default_factory=SitesOptions)
    registers: tuple[Register, ...] = ()
    protected: tuple[PolygonLayer, ...] = ()
    regions: PolygonLayer | None = None
    reviews: Reviews | None = None


def load_inputs(options: SitesOptions | None = None) -> SitesInputs:
    """Read every register, layer and reviews file; InputError (exit 3) on the first bad one."""
    from ..ores import load_ore_mapping

    options = options or SitesOptions()
    ores = load_ore_mapping(gold_impact=options.gold_impact)  # type: ignore[arg-type]
    return SitesInputs(
        options=options,
        registers=tuple(read_register(spec, match_m=options.match_m, ores=ores) for spec in options.registers),
        protected=tuple(read_polygon_layer(spec, "protected-area layer") for spec in options.protected),
        regions=read_polygon_layer(options.regions, "regions layer") if options.regions else None,
        reviews=read_reviews(options.reviews) if options.reviews else None,
    )


@dataclass(frozen=True)
class NationalSites:
    """The sites of a run and every table derived from them (see docs/SITES.md)."""

    #: one row per site, SITE_COLUMNS + footprint geometry (EPSG:4326)
    sites: gpd.GeoDataFrame
    #: every unique detection cell with its site_id (null for cells flagged no_ore)
    detections: pd.DataFrame
    #: register entries no site matched ("registered, not detected")
    register_unmatched: gpd.GeoDataFrame
    #: one row per (site, protected area): hectares inside
    site_areas: pd.DataFrame
    #: per protected area: sites and hectares by impact class and registration status
    protected_areas: pd.DataFrame
    #: per region: the same
    regions: pd.DataFrame
    #: figures for summary.md / summary.json
    summary: dict[str, Any]


def build_national(detections: pd.DataFrame, scenes: Mapping[str, SceneGrid],
                   inputs: SitesInputs | None = None) -> NationalSites:
    """Sites from the detections of every committed scene (`scenes`: scene id → cell grid)."""
    import geopandas as gpd
    import pandas as pd

    from ..outputs import SITE_COLUMNS, coerce_detections

    inputs = inputs or SitesInputs()
    options = inputs.options
    unique = dedupe_cells(coerce_detections(detections), {k: g.cell_shape for k, g in scenes.items()})
    kept = unique["kept"].to_numpy(bool)
    members = unique[kept].reset_index(drop=True)
    labels = cluster_labels(members["lon"].to_numpy(), members["lat"].to_numpy(), options.link_m)
    n_sites = int(labels.max()) + 1 if len(labels) else 0
    ids = stable_ids(members["lon"].to_numpy(), members["lat"].to_numpy(), labels, n_sites)
    footprints = site_footprints(members, labels, n_sites, scenes)
    area_m2, perimeter = geodesy.area_perimeter(footprints)

    sites = _site_stats(members, labels, n_sites)
    sites.insert(0, "site_id", ids)
    sites["area_ha"] = np.round(area_m2 / M2_PER_HA, 4)
    sites["perimeter_m"] = np.round(perimeter, 1)
    scanned = coverage(scenes)
    matched = match_registers(footprints, inputs.registers, scanned)
    sites = pd.concat([sites, matched.sites], axis=1)
    pairs = intersections(footprints, sites["area_ha"].to_numpy(), inputs.protected)
    inside = per_site(pairs, sites["area_ha"].to_numpy())
    sites["protected"] = inside.ha_total > 0
    sites["protected_names"] = inside.names.to_numpy()
    sites["protected_types"] = inside.types.to_numpy()
    sites["protected_ha"] = np.round(inside.ha_total, 4)
    sites["protected_ha_each"] = inside.ha_each.to_numpy()
    regions = list(filter(None, [inputs.regions]))
    region_pairs = intersections(footprints, sites["area_ha"].to_numpy(), regions)
    sites["regions"] = per_site(region_pairs, sites["area_ha"].to_numpy()).names.to_numpy()
    carried = carry_reviews(sites["site_id"], footprints, inputs.reviews)
    sites["review"] = carried.review.to_numpy()
    sites["review_note"] = carried.note.to_numpy()

    order = np.lexsort((sites["site_id"].to_numpy(), -sites["p_mine_max"].to_numpy()))
    table = gpd.GeoDataFrame(sites[list(SITE_COLUMNS)], geometry=list(footprints), crs="EPSG:4326")
    site_areas = pairs.assign(site_id=np.asarray(ids, dtype=object)[pairs["site"].to_numpy(np.int64)])
    dets = unique.copy()
    dets["site_id"] = pd.array([None] * len(dets), dtype="string")
    dets.loc[kept, "site_id"] = np.asarray(ids, dtype=object)[labels] if n_sites else []
    national = NationalSites(
        sites=table.iloc[order].reset_index(drop=True),
        detections=dets,
        register_unmatched=matched.unmatched,
        site_areas=site_areas[["site_id", "layer", "name", "type", "ha"]].round({"ha": 4}),
        protected_areas=area_totals(pairs, sites),
        regions=area_totals(region_pairs, sites),
        summary={},
    )
    national.summary.update(_summary(national, detections, inputs, matched.stats, carried))
    return national


def _site_stats(members: pd.DataFrame, labels: np.ndarray, n_sites: int) -> pd.DataFrame:
    """Per-site figures over the member detections, sites in label order."""
    import pandas as pd

    grouped = members.assign(_site=labels).groupby("_site", sort=True)
    stats = grouped.agg(
        n_detections=("p_mine", "size"), p_mine_max=("p_mine", "max"), p_mine_mean=("p_mine", "mean"),
        p_high=("p_high", "mean"), p_low=("p_low", "mean"), p_no_ore=("p_no_ore", "mean"),
    )
    best = representative_members(members["lon"].to_numpy(), members["lat"].to_numpy(),
                                  members["p_mine"].to_numpy(np.float64), labels, n_sites)
    # every member was judged ore-bearing, so the class is the larger of high and low
    impact = np.where(stats["p_high"].to_numpy() >= stats["p_low"].to_numpy(), "high", "low")
    codes, names = pd.factorize(members["scene_id"], sort=True)
    pairs = np.unique(labels * len(names) + codes)  # (site, scene) once, scenes sorted within a site
    site_of, scene_of = np.divmod(pairs, len(names))
    starts = np.flatnonzero(np.r_[True, site_of[1:] != site_of[:-1]])
    names = np.asarray(names, dtype=object)
    scenes = [";".join(names[scene_of[a:b]]) for a, b in zip(starts, np.r_[starts[1:], len(pairs)], strict=True)]
    out = pd.DataFrame({
        "lon": members["lon"].to_numpy()[best], "lat": members["lat"].to_numpy()[best],
        "n_detections": stats["n_detections"].to_numpy(np.int64),
        **{c: stats[c].to_numpy(np.float32) for c in ("p_mine_max", "p_mine_mean", "p_high", "p_low", "p_no_ore")},
        "impact_class": impact, "scenes": scenes,
    })
    return out


def _summary(national: NationalSites, detections: pd.DataFrame, inputs: SitesInputs,
             register_stats: dict, carried) -> dict[str, Any]:
    sites = national.sites
    dets = national.detections
    registered = sites["registered"].to_numpy(bool)
    protected = sites["protected"].to_numpy(bool)
    summary: dict[str, Any] = {
        "detections": len(detections),
        "detections_unique_cells": len(dets),
        "detections_flagged_no_ore": int((~dets["kept"].to_numpy(bool)).sum()),
        "sites": len(sites),
        "sites_by_impact": {c: int((sites["impact_class"] == c).sum()) for c in ("high", "low")},
        "area_ha": round(float(sites["area_ha"].sum()), 2),
        "link_m": inputs.options.link_m,
    }
    if inputs.registers:
        summary |= {
            "sites_registered": int(registered.sum()),
            "sites_unregistered": int((~registered).sum()),
            "area_ha_unregistered": round(float(sites.loc[~registered, "area_ha"].sum()), 2),
            "registers": register_stats,
            "register_entries_not_detected_in_scanned_area": int(national.register_unmatched["scanned"].sum()),
        }
    if inputs.protected:
        summary |= {
            "sites_in_protected_areas": int(protected.sum()),
            "sites_unregistered_in_protected_areas": int((protected & ~registered).sum()),
            "protected_ha": round(float(sites["protected_ha"].sum()), 2),
            "protected_layers": {layer.source: {"path": layer.path, "areas": len(layer.frame),
                                                "repaired_polygons": layer.repaired,
                                                "empty_geometries": layer.empty}
                                 for layer in inputs.protected},
        }
    if inputs.regions is not None:
        summary |= {"regions": {"path": inputs.regions.path, "areas": len(inputs.regions.frame),
                                "repaired_polygons": inputs.regions.repaired,
                                "regions_with_sites": len(national.regions)}}
    if inputs.reviews is not None:
        summary |= {"reviews": {"path": inputs.reviews.path, "verdicts": len(inputs.reviews.table),
                                "carried_by_id": carried.by_id, "carried_by_place": carried.by_place,
                                "found_no_site": list(carried.unplaced)}}
    return summary
