"""Labelled points: CSV, GeoJSON/shapefile, or the ANM dam register, read by one reader.

* CSV: `lon,lat,label[,ore]` with a header (also `longitude`/`latitude`, `x`/`y`, an
  optional `id`), or the same four columns without one.
* Any vector file geopandas reads (GeoJSON, shapefile, ...): point geometries, `label`
  and `ore` attributes when present; `default_label` for files without labels (the
  Amazon Mining Watch positives carry no properties).
* The ANM register of mining tailings dams (tab-separated, CRLF, Portuguese headers,
  degrees-minutes-seconds such as `-20°03'53.300"`): every dam is a `mine` point whose
  ore is `MINÉRIO PRINCIPAL` in Portuguese (the impact classes are assigned in training).
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import pandas as pd

ANM_LAT, ANM_LON, ANM_ORE, ANM_NAME = "LATITUDE", "LONGITUDE", "MINÉRIO PRINCIPAL", "NOME DA BARRAGEM DE MINERAÇÃO"
#: more columns of the ANM register (read by the sites' registers, written by the synthetic one)
ANM_OWNER, ANM_STATE, ANM_TOWN = "NOME DO EMPREENDEDOR", "UF", "MUNICÍPIO"
ANM_HEIGHT, ANM_VOLUME = "ALTURA ATUAL (m)", "VOLUME ATUAL (m3)"
ANM_RISK, ANM_DAMAGE = "CATEGORIA DE RISCO", "DANO POTENCIAL ASSOCIADO"
_LON_NAMES = ("lon", "longitude", "lng", "long", "x")
_LAT_NAMES = ("lat", "latitude", "y")
_DMS = re.compile(
    r"""^\s*(?P<sign>[-+−])?\s*(?P<deg>\d+(?:[.,]\d+)?)\s*°\s*
        (?:(?P<min>\d+(?:[.,]\d+)?)\s*['′]\s*)?
        (?:(?P<sec>\d+(?:[.,]\d+)?)\s*(?:"|″|'')?\s*)?
        (?P<hemi>[NSEWOL])?\s*$""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class LabelledPoint:
    """A point in lon/lat degrees with its class label and, when known, its ore."""

    id: str
    lon: float
    lat: float
    label: str
    ore: str | None = None
    #: the source's own name for the point (the ANM dam name), kept for the chip index
    name: str | None = None


def parse_dms(text: str) -> float:
    """Degrees from `-20°03'53.300"`, `20°03'53,3" S`, `-20.0648` or `-20,0648`.

    The sign is read from the text, not from the degrees, so `-0°44'00.100"` stays negative.
    """
    s = text.strip()
    decimal = s.replace(",", ".").replace("−", "-")
    try:
        return float(decimal)
    except ValueError:
        pass
    m = _DMS.match(s)
    if not m:
        raise ValueError(f"not a coordinate: {text!r}")
    value = sum(float((m.group(k) or "0").replace(",", ".")) / d
                for k, d in (("deg", 1), ("min", 60), ("sec", 3600)))
    negative = m.group("sign") in ("-", "−") or (m.group("hemi") or "").upper() in ("S", "W", "O")
    return -value if negative else value


def read_points_table(path: str | Path, *, skipped: list[str] | None = None,
                      lon_column: str | None = None, lat_column: str | None = None) -> pd.DataFrame:
    """Every row of a points file as a table: `id`, `lon`, `lat` (degrees, EPSG:4326) and the
    file's other columns as they are (`label`, `ore`, `name` where the file has them).

    The one reader of labelled-point files: `acquire chips` (through `read_points`),
    `train --points` and the register matching all read through it, so a file one of them
    accepts, all of them accept. Coordinates may be decimal or degrees-minutes-seconds.
    A table's delimiter is a tab, a semicolon (spreadsheets in Portuguese) or a comma;
    `lon_column`/`lat_column` name its coordinate columns when their names are not the usual.

    A row whose coordinate cannot be read is an InputError naming it, unless `skipped` is
    given: then the row is left out and described there (file:line, what was wrong).
    """
    import pandas as pd

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        text = read_text(path)
        if is_anm_header(text.split("\n", 1)[0]):
            rows = _anm(text, path, skipped)
        else:
            rows = _csv(text, path, skipped, lon_column, lat_column)
    else:
        rows = _vector(path)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame({"id": pd.Series(dtype=str), "lon": pd.Series(dtype=float),
                             "lat": pd.Series(dtype=float)})
    return table


def read_points(path: str | Path, default_label: str | None = None) -> list[LabelledPoint]:
    """Labelled points from any supported file; `default_label` for rows without a label."""
    table = read_points_table(path)
    points = []
    for n, row in enumerate(table.to_dict("records"), start=1):
        label = row.get("label") if _present(row.get("label")) else default_label
        if not label:
            raise InputError(f"{path} row {n}: no label; add a label column or pass --label")
        ore, name = row.get("ore"), row.get("name")
        points.append(LabelledPoint(str(row["id"]), float(row["lon"]), float(row["lat"]), str(label),
                                    str(ore) if _present(ore) else None,
                                    str(name) if _present(name) else None))
    return points


def read_text(path: Path, what: str = "points file") -> str:
    """A text table's contents (a BOM dropped), or an InputError naming `what` and the fix."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {path} is not UTF-8: re-save it as UTF-8") from None


def _coordinates(lon: float, lat: float, where: str) -> tuple[float, float]:
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(f"{where}: coordinate ({lon}, {lat}) is outside lon −180..180 / lat −90..90")
    return lon, lat


def is_anm_header(first_line: str) -> bool:
    """True for the header of the ANM dam register (tab-separated, Portuguese column names)."""
    return ANM_LAT in first_line and ANM_LON in first_line and "\t" in first_line


def _column(header: list[str], given: str | None, usual: tuple[str, ...], path: Path) -> int | None:
    if given is not None:
        if given not in header:
            raise InputError(f"points file {path} has no column {given!r}; its columns are {header[:20]}")
        return header.index(given)
    lower = [c.lower() for c in header]
    return next((lower.index(n) for n in usual if n in lower), None)


def _csv(text: str, path: Path, skipped: list[str] | None = None,
         lon_column: str | None = None, lat_column: str | None = None) -> list[dict]:
    first = text.split("\n", 1)[0]
    delimiter = max(("\t", ";", ","), key=first.count) if any(d in first for d in "\t;,") else ","
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in r)]
    if not rows:
        raise InputError(f"points file {path} is empty")
    header = [c.strip() for c in rows[0]]
    lon_i = _column(header, lon_column, _LON_NAMES, path)
    lat_i = _column(header, lat_column, _LAT_NAMES, path)
    if lon_i is not None and lat_i is not None:
        body, start = rows[1:], 2
        names = [c.lower() if c.lower() in ("label", "ore", "id", "name") else c for c in header]
    elif _is_number(rows[0][0]) and len(rows[0]) >= 2 and _is_number(rows[0][1]):
        body, start, lon_i, lat_i = rows, 1, 0, 1
        names = ["lon", "lat", "label", "ore"][: max(len(r) for r in rows)]
    else:
        raise InputError(
            f"points file {path} has no coordinate columns: expected a header with lon,lat "
            f"(or longitude,latitude / x,y), got {rows[0][:6]}"
        )
    out = []
    for n, row in enumerate(body, start=start):
        where = f"{path}:{n}"
        cells = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(names)}
        try:
            lon, lat = _coordinates(*_parse_pair(row, lon_i, lat_i, where), where)
        except InputError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
            continue
        cells.pop(names[lon_i]), cells.pop(names[lat_i])
        record = {"id": cells.pop("id", "") or f"p{n:05d}", "lon": lon, "lat": lat}
        out.append({**record, **{k: v for k, v in cells.items() if v != "" or k in ("label", "ore")}})
    return out


def _parse_pair(row: list[str], lon_i: int, lat_i: int, where: str) -> tuple[float, float]:
    try:
        return parse_dms(row[lon_i]), parse_dms(row[lat_i])
    except (ValueError, IndexError) as exc:
        raise InputError(f"{where}: {exc}") from None


def _anm(text: str, path: Path, skipped: list[str] | None = None) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(text), dialect="excel-tab"))
    out = []
    for n, row in enumerate(rows, start=2):
        where = f"{path}:{n}"
        try:
            lon, lat = _coordinates(*_parse_pair([row[ANM_LON] or "", row[ANM_LAT] or ""], 0, 1, where), where)
        except InputError as exc:
            if skipped is None:
                raise
            skipped.append(f"{exc} ({(row.get(ANM_NAME) or 'unnamed dam').strip()})")
            continue
        rest = {k.strip(): (v or "").strip() for k, v in row.items() if k and k not in (ANM_LAT, ANM_LON)}
        out.append({"id": f"anm{n - 1:04d}", "lon": lon, "lat": lat, "label": "mine",
                    "ore": rest.get(ANM_ORE) or None, "name": rest.get(ANM_NAME) or None, **rest})
    return out


def _vector(path: Path) -> list[dict]:
    import geopandas as gpd

    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - pyogrio's DataSourceError and friends
        raise InputError(f"cannot read points file {path}: {exc}") from None
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if not len(frame):
        raise InputError(f"points file {path} has no geometries with coordinates")
    frame = frame.explode(index_parts=False)
    kinds = set(frame.geometry.geom_type)
    if kinds != {"Point"}:
        raise InputError(f"points file {path} holds {sorted(kinds)}: give point geometries")
    out = []
    for n, (_, rec) in enumerate(frame.iterrows(), start=1):
        attrs = {k: v for k, v in rec.drop(labels="geometry").items() if _present(v)}
        record = {"id": str(attrs.pop("id", f"p{n:05d}"))}
        record["lon"], record["lat"] = _coordinates(rec.geometry.x, rec.geometry.y, f"{path} feature {n}")
        out.append({**record, **attrs})
    return out


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and str(value) != ""


def _is_number(text: str) -> bool:
    try:
        parse_dms(text)
        return True
    except ValueError:
        return False
