"""Labelled points for training chips: CSV, GeoJSON/shapefile, or the ANM dam register.

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
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import InputError

ANM_LAT, ANM_LON, ANM_ORE, ANM_NAME = "LATITUDE", "LONGITUDE", "MINÉRIO PRINCIPAL", "NOME DA BARRAGEM DE MINERAÇÃO"
_LON_NAMES = ("lon", "longitude", "x", "lng")
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


def read_points(path: str | Path, default_label: str | None = None) -> list[LabelledPoint]:
    """Read labelled points from any supported file; raise InputError naming the problem."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        text = _read_text(path)
        if is_anm_header(text.split("\n", 1)[0]):
            return _anm(text, path)
        return _csv(text, path, default_label)
    return _vector(path, default_label)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"points file {path} does not exist") from None
    except UnicodeDecodeError:
        raise InputError(f"points file {path} is not UTF-8: re-save it as UTF-8") from None


def _checked(pid: str, lon: float, lat: float, label: str | None, ore: str | None, where: str) -> LabelledPoint:
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(f"{where}: coordinate ({lon}, {lat}) is outside lon −180..180 / lat −90..90")
    if not label:
        raise InputError(f"{where}: no label; add a label column or pass --label")
    return LabelledPoint(pid, lon, lat, label, ore or None)


def _csv(text: str, path: Path, default_label: str | None) -> list[LabelledPoint]:
    dialect = "excel-tab" if "\t" in text.split("\n", 1)[0] else "excel"
    rows = [r for r in csv.reader(io.StringIO(text), dialect=dialect) if any(c.strip() for c in r)]
    if not rows:
        raise InputError(f"points file {path} is empty")
    header = [c.strip().lower() for c in rows[0]]
    lon_i = next((header.index(n) for n in _LON_NAMES if n in header), None)
    lat_i = next((header.index(n) for n in _LAT_NAMES if n in header), None)
    if lon_i is not None and lat_i is not None:
        body, start = rows[1:], 2
        label_i = header.index("label") if "label" in header else None
        ore_i = header.index("ore") if "ore" in header else None
        id_i = header.index("id") if "id" in header else None
    elif _is_number(rows[0][0]) and len(rows[0]) >= 2 and _is_number(rows[0][1]):
        body, start, lon_i, lat_i, label_i, ore_i, id_i = rows, 1, 0, 1, 2, 3, None
    else:
        raise InputError(
            f"points file {path} has no coordinate columns: expected a header with lon,lat "
            f"(or longitude,latitude / x,y), got {rows[0][:6]}"
        )
    points = []
    for n, row in enumerate(body, start=start):
        where = f"{path}:{n}"
        cell = lambda i: row[i].strip() if i is not None and i < len(row) else ""  # noqa: E731
        try:
            lon, lat = parse_dms(cell(lon_i)), parse_dms(cell(lat_i))
        except ValueError as exc:
            raise InputError(f"{where}: {exc}") from None
        points.append(_checked(cell(id_i) or f"p{n:05d}", lon, lat, cell(label_i) or default_label,
                               cell(ore_i), where))
    return points


@dataclass(frozen=True, slots=True)
class AnmRow:
    """One data row of the ANM register, its coordinates read or the reason they could not be."""

    line: int  # line number in the file; the header is line 1
    fields: dict[str, str]
    lon: float | None
    lat: float | None
    error: str | None

    @property
    def id(self) -> str:
        """`anm0001` for the first data row: where an analyst finds it in the file."""
        return f"anm{self.line - 1:04d}"


def is_anm_header(first_line: str) -> bool:
    """True for the ANM register's tab-separated header (Portuguese column names)."""
    return ANM_LAT in first_line and ANM_LON in first_line and "\t" in first_line


def anm_rows(text: str, path: str | Path) -> list[AnmRow]:
    """Every data row of an ANM register text, coordinates parsed (DMS, decimal comma)."""
    rows = []
    for n, row in enumerate(csv.DictReader(io.StringIO(text), dialect="excel-tab"), start=2):
        fields = {k: (v or "").strip() for k, v in row.items() if k is not None}
        try:
            lat, lon = parse_dms(fields.get(ANM_LAT, "")), parse_dms(fields.get(ANM_LON, ""))
        except ValueError as exc:
            rows.append(AnmRow(n, fields, None, None, f"{path}:{n}: {exc}"))
            continue
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            rows.append(AnmRow(n, fields, None, None,
                               f"{path}:{n}: coordinate ({lon}, {lat}) is outside lon −180..180 / lat −90..90"))
            continue
        rows.append(AnmRow(n, fields, lon, lat, None))
    return rows


def _anm(text: str, path: Path) -> list[LabelledPoint]:
    points = []
    for row in anm_rows(text, path):
        if row.error is not None:
            raise InputError(row.error)
        point = _checked(row.id, row.lon, row.lat, "mine", row.fields.get(ANM_ORE, ""), f"{path}:{row.line}")
        points.append(replace(point, name=row.fields.get(ANM_NAME) or None))
    return points


def _vector(path: Path, default_label: str | None) -> list[LabelledPoint]:
    import geopandas as gpd

    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # pyogrio's DataSourceError and friends
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
    points = []
    for n, (_, rec) in enumerate(frame.iterrows(), start=1):
        label = rec.get("label") if "label" in frame.columns else None
        ore = rec.get("ore") if "ore" in frame.columns else None
        pid = rec.get("id") if "id" in frame.columns and _present(rec.get("id")) else f"p{n:05d}"
        points.append(_checked(str(pid), rec.geometry.x, rec.geometry.y,
                               str(label) if _present(label) else default_label,
                               str(ore) if _present(ore) else None, f"{path} feature {n}"))
    return points


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and str(value) != ""


def _is_number(text: str) -> bool:
    try:
        parse_dms(text)
        return True
    except ValueError:
        return False
