"""Substance and type of each mining patch, from a register of mines that falls in it.

MapBiomas mining ATBD, Col. 9, §4 and Figure 4: the U-Net only says mining or not; the
substance and the type (industrial or garimpo) come from intersecting the filtered mining
pixels with a register of mines, coded as Table 3's `class_id`. Here a patch is an
8-connected component of mining in one year (the spatial filter's connectivity); every
register entry inside it (a point's pixel, or any pixel a polygon touches) votes for its
`class_id`, the most voted wins (a tie goes to the lowest id: industrial before garimpo),
and a patch no usable entry falls in keeps the generic mining class 30.

Registers: the ANM register of tailings dams (read by `minescan.points`; its
`MINÉRIO PRINCIPAL` is the substance and every dam belongs to an industrial mine), or any
occurrence table a user passes, such as the geological survey's (CPRM GeoSGB) mineral
occurrences: CSV/TSV with coordinate columns, or a vector file of points or polygons, the
substance and type columns named by the caller.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..log import progress
from ..outputs._atomic import atomic_dir
from ..points import ANM_ORE, parse_dms, read_points, read_text
from .classes import Kind, kind_of, match_substance
from .cube_io import (
    VARIABLE,
    YEAR_MASK,
    CubeGrid,
    bounds_window,
    create_class_cube,
    open_class_cube,
    update_attrs,
    window_transform,
)
from .filters import EIGHT_CONNECTED, MINING

if TYPE_CHECKING:
    import shapely

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisterColumns:
    """Which columns of a user's occurrence table hold what (None: not in the table)."""

    substance: str | None = None
    kind: str | None = None
    lon: str | None = None
    lat: str | None = None
    default_kind: Kind = "industrial"


@dataclass(frozen=True)
class RegisterEntry:
    """One mine of a register: where (EPSG:4326), what it names, and its Table 3 class."""

    id: str
    geometry: shapely.Geometry
    substance: str
    kind: Kind
    class_id: int | None


@dataclass(frozen=True)
class Register:
    """A register's entries and what could not be coded, for the user's report."""

    path: str
    entries: tuple[RegisterEntry, ...]
    unknown_substances: dict[str, int] = field(default_factory=dict)

    @property
    def usable(self) -> tuple[RegisterEntry, ...]:
        return tuple(e for e in self.entries if e.class_id is not None)


def read_register(path: str | os.PathLike[str], columns: RegisterColumns | None = None) -> Register:
    """Read the ANM register (no columns named) or an occurrence table; InputError if none is usable."""
    columns = columns or RegisterColumns()
    path = Path(path)
    if not path.exists():
        raise InputError(f"register {path} does not exist")
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        rows = _table_rows(path, columns)
    else:
        rows = _vector_rows(path, columns)
    entries = []
    for entry_id, geometry, substance, kind_text in rows:
        kind = (kind_of(kind_text) if kind_text else None) or columns.default_kind
        match = match_substance(substance, kind) if substance else None
        entries.append(RegisterEntry(entry_id, geometry, substance, kind, match and match.class_id))
    unknown = Counter(e.substance or "(empty)" for e in entries if e.class_id is None)
    register = Register(str(path), tuple(entries), dict(unknown.most_common()))
    if not register.usable:
        examples = ", ".join(repr(s) for s in list(unknown)[:3])
        raise InputError(
            f"register {path} has no entry with a substance Table 3 codes ({len(entries)} entries, "
            f"e.g. {examples}): name the substance column with --substance-column"
        )
    return register


def _table_rows(path: Path, columns: RegisterColumns) -> list[tuple[str, Any, str, str]]:
    import shapely

    text = read_text(path, "register")
    first = text.split("\n", 1)[0]
    if columns.substance is None and ANM_ORE in first and "\t" in first:
        # the ANM register: minescan.points knows its DMS coordinates and headers
        return [(p.id, shapely.Point(p.lon, p.lat), p.ore or "", "industrial") for p in read_points(path)]
    dialect = "excel-tab" if "\t" in first else "excel"
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = reader.fieldnames or []
    lon_col = columns.lon or _pick(header, ("lon", "longitude", "x"), "--lon-column", path)
    lat_col = columns.lat or _pick(header, ("lat", "latitude", "y"), "--lat-column", path)
    for needed in (lon_col, lat_col, columns.substance, columns.kind):
        if needed is not None and needed not in header:
            raise InputError(f"register {path} has no column {needed!r}; its columns are {header[:12]}")
    if columns.substance is None:
        raise InputError(f"register {path} is not the ANM register: name its substance column with --substance-column")
    rows = []
    for n, row in enumerate(reader, start=2):
        try:
            lon, lat = parse_dms(row[lon_col] or ""), parse_dms(row[lat_col] or "")
        except ValueError as exc:
            raise InputError(f"{path}:{n}: {exc}") from None
        if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
            raise InputError(f"{path}:{n}: coordinate ({lon}, {lat}) is outside lon −180..180 / lat −90..90")
        kind_text = (row.get(columns.kind) or "") if columns.kind else ""
        rows.append((f"r{n - 1:05d}", shapely.Point(lon, lat), (row[columns.substance] or "").strip(), kind_text))
    return rows


def _pick(header: list[str], names: tuple[str, ...], option: str, path: Path) -> str:
    lowered = {h.strip().lower(): h for h in header}
    for name in names:
        if name in lowered:
            return lowered[name]
    raise InputError(f"register {path} has no coordinate column among {header[:12]}: name it with {option}")


def _vector_rows(path: Path, columns: RegisterColumns) -> list[tuple[str, Any, str, str]]:
    import geopandas as gpd

    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio's DataSourceError and friends
        raise InputError(f"cannot read register {path}: {exc}") from None
    if columns.substance is None or columns.substance not in frame.columns:
        raise InputError(
            f"register {path}: name its substance column with --substance-column "
            f"(columns: {[c for c in frame.columns if c != 'geometry'][:12]})"
        )
    if columns.kind is not None and columns.kind not in frame.columns:
        raise InputError(f"register {path} has no column {columns.kind!r}")
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    kinds = set(frame.geometry.geom_type)
    if not kinds <= {"Point", "MultiPoint", "Polygon", "MultiPolygon"}:
        raise InputError(f"register {path} holds {sorted(kinds)}: give points or polygons")
    rows = []
    for n, (_, rec) in enumerate(frame.iterrows(), start=1):
        substance = rec[columns.substance]
        kind_text = rec[columns.kind] if columns.kind else ""
        rows.append((f"r{n:05d}", rec.geometry, _text(substance), _text(kind_text)))
    return rows


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


# ---- placing entries on the grid and voting -----------------------------------------------------


@dataclass(frozen=True)
class EntryPixels:
    """The grid pixels each usable entry covers: flat indices, and the entry's number and class."""

    pixels: np.ndarray  # flat (row * width + col) indices, int64
    entry: np.ndarray  # index into the usable entries, per pixel
    class_id: np.ndarray  # per usable entry, uint8
    outside: int  # usable entries that fall outside the grid


def entry_pixels(entries: tuple[RegisterEntry, ...], grid: CubeGrid) -> EntryPixels:
    """Rasterise usable entries onto the grid: a point's pixel, every pixel a polygon touches."""
    import pyproj
    import shapely

    to_grid = pyproj.Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
    pixels, owners, outside = [], [], 0
    for number, entry in enumerate(entries):
        geom = shapely.transform(entry.geometry, lambda xy: np.column_stack(to_grid.transform(xy[:, 0], xy[:, 1])))
        if geom.geom_type in ("Point", "MultiPoint"):
            xy = shapely.get_coordinates(geom)
            cols, rows = ~grid.transform @ (xy[:, 0], xy[:, 1])
            rows, cols = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
        else:
            rows, cols = _polygon_pixels(geom, grid)
        keep = (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)
        if not keep.any():
            outside += 1
            continue
        flat = np.unique(rows[keep] * grid.width + cols[keep])
        pixels.append(flat)
        owners.append(np.full(flat.size, number, dtype=np.int64))
    class_ids = np.array([e.class_id for e in entries], dtype=np.uint8)
    if not pixels:
        return EntryPixels(np.zeros(0, np.int64), np.zeros(0, np.int64), class_ids, outside)
    return EntryPixels(np.concatenate(pixels), np.concatenate(owners), class_ids, outside)


def _polygon_pixels(geom: shapely.Geometry, grid: CubeGrid) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of every grid pixel the polygon touches, rasterised over its own bounds only."""
    from rasterio.features import geometry_mask

    window = bounds_window(geom.bounds, grid, pad=1)
    if window is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    inside = ~geometry_mask([geom], out_shape=(window.height, window.width), transform=window_transform(window, grid),
                            all_touched=True)
    rows, cols = np.nonzero(inside)
    return rows.astype(np.int64) + window.row_off, cols.astype(np.int64) + window.col_off


def code_year(year_map: np.ndarray, hits: EntryPixels) -> tuple[np.ndarray, int]:
    """One year's map with each mining patch coded by the entries in it; and how many patches were.

    Pure: labels 8-connected mining patches, counts one vote per (entry, patch) for the
    entry's class_id, and gives each voted patch its most voted class (ties: lowest id).
    """
    labels, count = ndimage.label(year_map == MINING, structure=EIGHT_CONNECTED)
    patch = labels.ravel()[hits.pixels]
    inside = patch > 0
    if count == 0 or not inside.any():
        return year_map.copy(), 0
    pairs = np.unique(np.column_stack([patch[inside], hits.entry[inside]]), axis=0)
    votes_key = np.column_stack([pairs[:, 0], hits.class_id[pairs[:, 1]]])
    keys, votes = np.unique(votes_key, axis=0, return_counts=True)
    # per patch: most votes first, then the lowest class id
    order = np.lexsort((keys[:, 1], -votes, keys[:, 0]))
    keys = keys[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:, 0] != keys[:-1, 0]
    lut = np.full(count + 1, MINING, dtype=np.uint8)
    lut[keys[first, 0]] = keys[first, 1]
    coded = np.where(labels > 0, lut[labels], year_map).astype(np.uint8)
    return coded, int(first.sum())


@dataclass(frozen=True)
class SubstanceSummary:
    out: str
    entries: int
    usable: int
    outside: int
    unknown_substances: dict[str, int]
    patches_coded: dict[int, int]


def code_cube(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    register: Register,
    *,
    overwrite: bool = False,
) -> SubstanceSummary:
    """Code the mining patches of every year of the filtered cube at `src` into a new cube at `dst`.

    Works one year at a time: memory holds one year's map and its patch labels.
    """
    import zarr

    cube = open_class_cube(src)
    dst = Path(dst)
    if dst.resolve() == Path(src).resolve():
        raise InputError(f"--out {dst} is the input cube: write the coded cube to a new path")
    if dst.exists() and not overwrite:
        raise InputError(f"{dst} exists and won't be overwritten without --overwrite")
    hits = entry_pixels(register.usable, cube.grid)
    with_mask = YEAR_MASK in zarr.open_group(cube.path, mode="r")
    coded_patches: dict[int, int] = {}
    with atomic_dir(dst) as tmp:
        create_class_cube(tmp, cube.grid, attrs=dict(cube.attrs), chunk=max(cube.chunks), with_year_mask=with_mask)
        out = zarr.open_group(str(tmp), mode="r+")
        for index, year in progress(enumerate(cube.grid.years), len(cube.grid.years), "coding substances"):
            coded, n = code_year(cube.read_year(index), hits)
            out[VARIABLE][index] = coded
            if with_mask:
                out[YEAR_MASK][index] = cube.read_year(index, YEAR_MASK)
            coded_patches[year] = n
        report = {"register": register.path, "entries": len(register.entries), "usable": len(register.usable),
                  "outside_grid": hits.outside, "patches_coded": {str(y): n for y, n in coded_patches.items()},
                  "method": "MapBiomas mining ATBD, Col. 9, §4, Table 3"}
        update_attrs(tmp, {"substance": report})
    log.info("coded substances", extra={"out": str(dst), "usable": len(register.usable),
                                         "patches": sum(coded_patches.values())})
    return SubstanceSummary(str(dst), len(register.entries), len(register.usable), hits.outside,
                            register.unknown_substances, coded_patches)
