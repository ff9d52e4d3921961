"""Official registers: which sites they list, and which of their entries no site matched.

The paper's analysts matched detections against the ANM register by hand (Balaniuk et
al. 2020, §4.3: 63 of 154 confirmed sites in Minas Gerais were in no official database).
Here a register is any of:

* **the ANM register of mining tailings dams as published**: tab-separated, CRLF, Portuguese
  headers, degrees-minutes-seconds coordinates (`-20°03'53.300"`), Brazilian numbers
  (`27.700.000,00`), Portuguese ore names. Recognised by its header.
* **a table of points** (CSV/TSV; comma, semicolon or tab): coordinates in decimal degrees
  (either decimal mark) or DMS, columns named by options or found by their usual names.
* **a vector layer of points or polygons** (GeoPackage, GeoJSON, shapefile: a concession
  layer), attributes named by options.

Matching: a point entry matches a site whose footprint lies within the register's match
distance of it (geodesic, from the point to the footprint's nearest edge; 0 inside); a
polygon entry matches a site whose footprint it intersects. A site takes its nearest
matching entry over all registers (ties: the register given first). Defaults, from each
register's positional accuracy:

* ANM register: **500 m**. Coordinates are written to 0.1″ (3 m) but mark a point on the
  dam, usually its crest, which sits at the edge of the pond the detection cells cover,
  and the paper found "a significant number of coordinates point to locations near the
  mines or tailings dams but not exactly to them" (§3.1): 500 m is about two detection
  cells beyond the footprint.
* other point registers: **250 m**, about one detection cell (a register of hand-placed
  pins on mine sites);
* polygons: they must intersect the footprint.

`--match-m` replaces the point default for every register; a register's own
`accuracy_m` setting (in a `--sites-config` file) replaces it for that register.

A row whose coordinate cannot be read is named (file and line), skipped and counted; the
rest of the register is used.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError
from ..ores import OreMapping, classify_ore
from ..points import (
    ANM_DAMAGE,
    ANM_HEIGHT,
    ANM_NAME,
    ANM_OWNER,
    ANM_RISK,
    ANM_STATE,
    ANM_TOWN,
    ANM_VOLUME,
    read_points_table,
)
from . import geodesy
from .layers import localize_input, pick_column, read_vector

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

log = logging.getLogger(__name__)

ANM_ACCURACY_M = 500.0
POINT_ACCURACY_M = 250.0
#: the entry table every register is read into (plus geometry)
ENTRY_COLUMNS = ("entry_id", "name", "ore", "impact", "risk", "damage", "height_m", "volume_m3")
#: names tried, case-insensitively, for columns an option does not name
_AUTO = {
    "id": ("id", "fid", "processo", "codigo", "code"),
    "name": ("name", "nome", "nome_barragem"),
    "ore": ("ore", "minerio", "minério", "substancia", "substância", "subs"),
    "risk": ("risk", "categoria_de_risco", "risco"),
    "damage": ("damage", "dano_potencial", "dano"),
    "height": ("height_m", "height", "altura"),
    "volume": ("volume_m3", "volume"),
}


class RegisterSpec(BaseModel):
    """One register file and how to read it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="register file, local or gs://")
    format: Literal["auto", "anm", "table", "vector"] = Field(
        "auto", description="auto: ANM by its header, CSV/TSV/TXT as a table, anything else as a vector layer")
    source: str | None = Field(None, description="register name in the outputs; default: the file's stem")
    layer: str | None = Field(None, description="layer inside a multi-layer vector file")
    id_column: str | None = Field(None, description="entry id attribute (default: id, or the row number)")
    name_column: str | None = Field(None, description="entry name attribute")
    ore_column: str | None = Field(None, description="ore attribute (any language the ore table knows)")
    risk_column: str | None = Field(None, description="risk category attribute")
    damage_column: str | None = Field(None, description="potential damage category attribute")
    height_column: str | None = Field(None, description="dam height attribute, metres")
    volume_column: str | None = Field(None, description="stored volume attribute, m³")
    lon_column: str | None = Field(None, description="longitude column of a table (WGS84 degrees or DMS)")
    lat_column: str | None = Field(None, description="latitude column of a table")
    accuracy_m: float | None = Field(None, ge=0, description="match distance for point entries, metres")


@dataclass(frozen=True)
class Register:
    """A register's entries in EPSG:4326 with the columns of ENTRY_COLUMNS (and extras)."""

    source: str
    path: str
    kind: str  # "anm", "table" or "vector"
    entries: gpd.GeoDataFrame
    #: point entries match within this distance of a footprint
    match_m: float
    #: rows that could not be used, each named with its file and line
    skipped: tuple[str, ...]


def parse_number(text: object, brazilian: bool) -> float | None:
    """`27.700.000,00` → 27700000.0 and `10,3` → 10.3 (Brazilian), or a plain number; None if empty.

    Raises ValueError for text that is not a number.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    if isinstance(text, int | float):
        return float(text)
    s = str(text).strip().replace("\u00a0", "").replace(" ", "")
    if not s:
        return None
    if brazilian or ("," in s and ("." not in s or s.rfind(",") > s.rfind("."))):
        s = s.replace(".", "").replace(",", ".")
    else:
        s = s.replace(",", "")
    if not re.fullmatch(r"[-+]?\d+(\.\d+)?", s):
        raise ValueError(f"not a number: {text!r}")
    return float(s)


def read_register(spec: RegisterSpec, *, match_m: float | None = None,
                  ores: OreMapping | None = None) -> Register:
    """Read and check one register; `match_m` (the `--match-m` option) overrides defaults."""
    source = spec.source or Path(spec.path.rstrip("/")).stem
    kind = spec.format
    if kind == "auto":
        kind = "table" if Path(spec.path).suffix.lower() in (".csv", ".tsv", ".txt") else "vector"
    if kind in ("table", "anm"):
        entries, skipped, kind = _table(spec, ores)
    else:
        entries, skipped = _vector(spec, ores)
    default = ANM_ACCURACY_M if kind == "anm" else POINT_ACCURACY_M
    distance = spec.accuracy_m if spec.accuracy_m is not None else match_m if match_m is not None else default
    if skipped:
        log.warning("register %s: skipped %d row(s) that cannot be placed, e.g. %s", spec.path, len(skipped),
                    skipped[0], extra={"register": source, "skipped_rows": len(skipped)})
    if not len(entries):
        raise InputError(f"register {spec.path} has no usable entries ({len(skipped)} rows skipped)")
    return Register(source, spec.path, kind, entries, float(distance), tuple(skipped))


def _frame(records: list[dict], geoms: list, extra: Sequence[str] = ()) -> gpd.GeoDataFrame:
    import geopandas as gpd
    import pandas as pd

    columns = [*ENTRY_COLUMNS, *extra]
    frame = pd.DataFrame.from_records(records, columns=columns) if records else pd.DataFrame(columns=columns)
    for name in ("height_m", "volume_m3"):
        frame[name] = pd.array(frame[name], dtype="Float64")
    for name in (c for c in columns if c not in ("height_m", "volume_m3")):
        frame[name] = pd.array(frame[name], dtype="string")
    return gpd.GeoDataFrame(frame, geometry=geoms, crs="EPSG:4326")


def _impact(ore: str | None, ores: OreMapping | None) -> str | None:
    match = classify_ore(ore, ores) if ore else None
    return match.impact if match else None


def _number(value: object, brazilian: bool, where: str, bad: list[str]) -> float | None:
    try:
        return parse_number(value, brazilian)
    except ValueError as exc:
        bad.append(f"{where}: {exc}")
        return None


def _warn_numbers(path: str, bad: list[str]) -> None:
    if bad:
        log.warning("register %s: %d number(s) could not be read and are left empty, e.g. %s",
                    path, len(bad), bad[0], extra={"unreadable_numbers": len(bad)})


#: ANM register columns for each entry field, and the extras kept for the analyst
_ANM_COLUMNS = {"id": "id", "name": "name", "ore": "ore", "risk": ANM_RISK, "damage": ANM_DAMAGE,
                "height": ANM_HEIGHT, "volume": ANM_VOLUME}
_ANM_EXTRAS = {"owner": ANM_OWNER, "state": ANM_STATE, "municipality": ANM_TOWN}


def _table(spec: RegisterSpec, ores: OreMapping | None) -> tuple[gpd.GeoDataFrame, list[str], str]:
    """A register table (the ANM register or a CSV/TSV) through the one points reader."""
    from shapely import points

    from .layers import _present

    skipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="minescan-register-") as tmp:
        local = localize_input(spec.path, tmp, "register", file=True)
        table = read_points_table(local, skipped=skipped, lon_column=spec.lon_column, lat_column=spec.lat_column)
    anm = ANM_NAME in table.columns
    if anm:
        col, extras = dict(_ANM_COLUMNS), dict(_ANM_EXTRAS)
    else:
        what = f"register {spec.path}"
        col = {key: pick_column(table, getattr(spec, f"{key}_column"), _AUTO[key], what)
               for key in _ANM_COLUMNS}
        extras = {}
    records, bad_numbers = [], []
    for n, row in enumerate(table.to_dict("records")):
        cells = {key: str(row[name]).strip() if name and _present(row.get(name)) else ""
                 for key, name in col.items()}
        where = f"{spec.path} entry {cells['id'] or n + 1}"
        record = _record(cells, f"{n + 1}", ores, where, bad_numbers, brazilian=anm)
        record.update({key: row.get(name) or None for key, name in extras.items()})
        records.append(record)
    _warn_numbers(spec.path, bad_numbers)
    geoms = list(points(table["lon"].to_numpy(float), table["lat"].to_numpy(float))) if len(table) else []
    return _frame(records, geoms, tuple(extras)), skipped, "anm" if anm else "table"


def _record(cells: dict[str, str], fallback_id: str, ores, where: str, bad_numbers: list[str],
            brazilian: bool = False) -> dict:
    """An entry from its attribute texts ('' when absent)."""
    ore = cells["ore"] or None
    return {
        "entry_id": cells["id"] or fallback_id, "name": cells["name"] or None, "ore": ore,
        "impact": _impact(ore, ores), "risk": cells["risk"] or None, "damage": cells["damage"] or None,
        "height_m": _number(cells["height"], brazilian, where, bad_numbers),
        "volume_m3": _number(cells["volume"], brazilian, where, bad_numbers),
    }


def _vector(spec: RegisterSpec, ores: OreMapping | None) -> tuple[gpd.GeoDataFrame, list[str]]:
    import shapely

    from .layers import _present

    what = f"register {spec.path}"
    frame = read_vector(spec.path, spec.layer, "register")
    geoms = frame.geometry.to_numpy()
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    kinds = {shapely.GeometryType(k).name for k in set(shapely.get_type_id(geoms[~empty]).tolist())}
    if kinds - {"POINT", "MULTIPOINT", "POLYGON", "MULTIPOLYGON"}:
        raise InputError(f"{what} holds {sorted(kinds)} geometries: give points or polygons")
    invalid = ~empty & ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
        log.warning("%s: repaired %d invalid polygon(s)", what, int(invalid.sum()),
                    extra={"register": spec.path, "repaired": int(invalid.sum())})
    col = {key: pick_column(frame, getattr(spec, f"{key}_column"), _AUTO[key], what) for key in _AUTO}
    records, keep, skipped, bad_numbers = [], [], [], []
    for i in range(len(frame)):
        if empty[i]:
            skipped.append(f"{spec.path} feature {i + 1}: no geometry")
            continue
        values = {key: frame[name].iloc[i] if name else None for key, name in col.items()}
        cells = {key: str(v).strip() if _present(v) else "" for key, v in values.items()}
        records.append(_record(cells, f"{i + 1}", ores, f"{spec.path} feature {i + 1}", bad_numbers))
        keep.append(i)
    _warn_numbers(spec.path, bad_numbers)
    return _frame(records, list(geoms[keep])), skipped


@dataclass(frozen=True)
class RegisterMatch:
    """What the registers say about the sites."""

    #: one row per site (same order): registered and the register_* columns
    sites: pd.DataFrame
    #: register entries no site matched, with `source` and `scanned`
    unmatched: gpd.GeoDataFrame
    #: per register: entries, skipped, matched, unmatched inside / outside the scanned area
    stats: dict[str, dict]


SITE_FIELDS = {
    "register_source": "source", "register_id": "entry_id", "register_name": "name", "register_ore": "ore",
    "register_impact": "impact", "register_risk": "risk", "register_damage": "damage",
    "register_height_m": "height_m", "register_volume_m3": "volume_m3",
}


def _candidates(footprints: np.ndarray, tree, register: Register) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(entry index, site index, distance m) of every entry-site pair that matches."""
    import shapely

    geoms = register.entries.geometry.to_numpy()
    pointlike = np.isin(shapely.get_type_id(geoms), (0, 4))  # Point, MultiPoint
    entry_idx, site_idx = [], []
    if pointlike.any():
        idx = np.flatnonzero(pointlike)
        minx, miny, maxx, maxy = shapely.bounds(geoms[idx]).T
        dlon, dlat = geodesy.degrees_around(np.maximum(np.abs(miny), np.abs(maxy)), register.match_m)
        boxes = shapely.box(minx - dlon, miny - dlat, maxx + dlon, maxy + dlat)
        e, s = tree.query(boxes, predicate="intersects")
        entry_idx.append(idx[e])
        site_idx.append(s)
    if (~pointlike).any():
        idx = np.flatnonzero(~pointlike)
        e, s = tree.query(geoms[idx], predicate="intersects")
        entry_idx.append(idx[e])
        site_idx.append(s)
    e = np.concatenate(entry_idx) if entry_idx else np.zeros(0, np.int64)
    s = np.concatenate(site_idx) if site_idx else np.zeros(0, np.int64)
    d = geodesy.distance_m(geoms[e], footprints[s])
    ok = np.where(pointlike[e], d <= register.match_m, d == 0)
    return e[ok], s[ok], d[ok]


def match_registers(footprints: np.ndarray, registers: Sequence[Register], scanned) -> RegisterMatch:
    """Match every register against the site footprints (lon/lat polygons)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    n = len(footprints)
    tree = shapely.STRtree(footprints)
    shapely.prepare(scanned)
    pairs, unmatched, stats = [], [], {}
    for r, register in enumerate(registers):
        e, s, d = _candidates(footprints, tree, register)
        pairs.append(pd.DataFrame({"register": r, "entry": e, "site": s, "distance": d}))
        free = np.setdiff1d(np.arange(len(register.entries)), e)
        rest = register.entries.iloc[free].copy()
        rest.insert(0, "source", pd.array([register.source] * len(rest), dtype="string"))
        rest["scanned"] = shapely.intersects(scanned, rest.geometry.to_numpy()) if len(rest) else []
        unmatched.append(rest)
        stats[register.source] = {
            "path": register.path, "format": register.kind, "entries": len(register.entries),
            "skipped_rows": len(register.skipped), "skipped_examples": list(register.skipped[:5]),
            "match_m": register.match_m, "entries_matched": len(np.unique(e)),
            "sites_matched": len(np.unique(s)),
            "unmatched_in_scanned_area": int(rest["scanned"].sum()) if len(rest) else 0,
            "unmatched_outside_scanned_area": int((~rest["scanned"].astype(bool)).sum()) if len(rest) else 0,
        }
    best = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame(columns=["register", "entry", "site", "distance"])
    best = best.sort_values(["site", "distance", "register", "entry"], kind="stable").drop_duplicates("site")
    out = pd.DataFrame({"registered": np.zeros(n, bool)})
    for column in SITE_FIELDS:
        out[column] = pd.array([None] * n, dtype="Float64" if column.endswith(("_m", "_m3")) else "string")
    out["register_distance_m"] = pd.array([None] * n, dtype="Float64")
    for r, register in enumerate(registers):
        chosen = best[best["register"] == r]
        if chosen.empty:
            continue
        sites = chosen["site"].to_numpy(np.int64)
        entries = register.entries.iloc[chosen["entry"].to_numpy(np.int64)]
        out.loc[sites, "registered"] = True
        out.loc[sites, "register_source"] = register.source
        for column, field in SITE_FIELDS.items():
            if field != "source":
                out.loc[sites, column] = entries[field].to_numpy()
        out.loc[sites, "register_distance_m"] = chosen["distance"].round(1).to_numpy()
    if unmatched:
        table = gpd.GeoDataFrame(pd.concat(unmatched, ignore_index=True), geometry="geometry", crs="EPSG:4326")
    else:
        table = _frame([], [])
        table.insert(0, "source", pd.array([], dtype="string"))
        table["scanned"] = np.zeros(0, bool)
    return RegisterMatch(sites=out, unmatched=table, stats=stats)
