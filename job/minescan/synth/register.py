"""A synthetic official register and a synthetic territory for a synthetic area.

`plant_register` writes a register in the ANM dam register's published format (tab-separated,
CRLF, Portuguese headers, degrees-minutes-seconds, Brazilian numbers), so the demo reads it
through the same code as the real one. It lists most planted targets, each at a point
inside the target moved up to `jitter_m` (registers point near a mine, not at its centre),
and lacks the others: those are the "unregistered mines" the demo must find. It also lists
one mine that the imagery does not show ("registered, not detected").

`plant_territory` writes one polygon over part of the area as a GeoJSON protected-area
layer. Names and values say SYNTHETIC wherever a user sees them.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..points import (
    ANM_DAMAGE,
    ANM_HEIGHT,
    ANM_LAT,
    ANM_LON,
    ANM_NAME,
    ANM_ORE,
    ANM_OWNER,
    ANM_RISK,
    ANM_STATE,
    ANM_TOWN,
    ANM_VOLUME,
)
from .kinds import SceneTruth

_HEADER = (ANM_NAME, ANM_OWNER, ANM_LAT, ANM_LON, "POSICIONAMENTO", ANM_STATE, ANM_TOWN, ANM_ORE,
           ANM_HEIGHT, ANM_VOLUME, "MÉTODO CONSTRUTIVO", ANM_RISK, ANM_DAMAGE, "CLASSE", "INSERIDA NA PNSB?")
TERRITORY_NAME = "Terra Indígena Sintética (SYNTHETIC)"


def dms(value: float) -> str:
    """`-20°03'53.300"`, as the ANM register writes coordinates."""
    sign = "-" if value < 0 else ""
    seconds = round(abs(value) * 3600, 3)
    degrees, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{int(degrees)}°{int(minutes):02d}'{seconds:06.3f}\""


def brazilian(value: float, decimals: int = 2) -> str:
    """`27.700.000,00`: thousands by dots, decimals by a comma."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


@dataclass(frozen=True)
class PlantedRegister:
    path: Path
    #: planted target ids the register lists, and those it lacks
    listed: tuple[str, ...]
    missing: tuple[str, ...]
    #: register rows of mines the imagery does not show
    phantom: tuple[str, ...]


def plant_register(truth: SceneTruth, path: str | os.PathLike, *, seed: int, listed_fraction: float = 0.7,
                   jitter_m: float = 150.0) -> PlantedRegister:
    """Write an ANM-format register listing `listed_fraction` of the planted targets."""
    from pyproj import Geod

    rng = np.random.default_rng([seed & 0xFFFFFFFF, 77])
    targets = list(truth.targets)
    order = rng.permutation(len(targets))
    n_listed = round(listed_fraction * len(targets))
    listed = sorted(targets[k].id for k in order[:n_listed])
    geod = Geod(ellps="WGS84")
    rows = []
    for target in targets:
        if target.id not in listed:
            continue
        inside = target.polygon_lonlat.representative_point()
        lon, lat, _ = geod.fwd(inside.x, inside.y, rng.uniform(0, 360), rng.uniform(0, jitter_m))
        rows.append(_row(f"Barragem {target.id} (SYNTHETIC)", lon, lat, target.ore or "Minério de Ferro", rng))
    # a registered mine where the imagery shows none: the area's far corner, inside it
    bounds = truth.transform @ (truth.size * 0.97, truth.size * 0.97)
    rows.append(_row("Barragem fantasma (SYNTHETIC, not in the imagery)", bounds[0], bounds[1], "Ouro", rng))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    text = "\r\n".join("\t".join(row) for row in [_HEADER, *rows]) + "\r\n"
    Path(path).write_bytes(text.encode("utf-8"))
    return PlantedRegister(Path(path), tuple(listed), tuple(sorted({t.id for t in targets} - set(listed))),
                           ("Barragem fantasma (SYNTHETIC, not in the imagery)",))


def _row(name: str, lon: float, lat: float, ore: str, rng: np.random.Generator) -> tuple[str, ...]:
    return (name, "Mineradora Sintética S.A. (SYNTHETIC)", dms(lat), dms(lon),
            "Sul do Equador" if lat < 0 else "Norte do Equador", "MG", "MUNICÍPIO SINTÉTICO", ore,
            brazilian(rng.uniform(5, 80), 1).rstrip("0").rstrip(","), brazilian(rng.uniform(1e4, 5e7)),
            "Etapa única", str(rng.choice(["Baixa", "Média", "Alta"])), str(rng.choice(["Baixa", "Média", "Alta"])),
            "C", "Sim")


def plant_territory(truth: SceneTruth, path: str | os.PathLike, *, west_fraction: float = 0.45) -> object:
    """Write a GeoJSON territory over the west part of the area; return its lon/lat polygon."""
    from shapely.geometry import Polygon, mapping

    size = truth.size
    # an irregular eastern boundary, as a river or a surveyed line makes it
    ys = np.linspace(0.02, 0.98, 9) * size
    xs = [west_fraction * size * (1 + 0.15 * math.sin(3.1 * k)) for k in range(len(ys))]
    pixels = [(0.02 * size, ys[0]), *zip(xs, ys, strict=True), (0.02 * size, ys[-1])]
    polygon = Polygon([truth.transform @ xy for xy in pixels])
    doc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": mapping(polygon),
        "properties": {"nome": TERRITORY_NAME, "tipo": "terra indígena (SYNTHETIC)"},
    }]}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return polygon
