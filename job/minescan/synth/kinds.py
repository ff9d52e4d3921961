"""The synthetic world's vocabulary: materials and their spectra, object kinds, truth records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..bands import S2_BANDS

if TYPE_CHECKING:
    from affine import Affine
    from shapely.geometry import Polygon



NODATA = 0
CRS = "EPSG:4326"
#: targets keep this many pixels from the scene edge and from the no-data region
TARGET_EDGE_MARGIN = 120
#: side of planted mines and dams, pixels (400 m – 2.5 km)
MIN_OBJECT_PX, MAX_OBJECT_PX = 40, 250
#: rendering block side: a multiple of the 256-px GeoTIFF tile and of the 60 m / 10 m ratio 6
BLOCK = 768
#: low-resolution noise fields have one node every FIELD_STEP pixels
FIELD_STEP = 4

#: the column order of SPECTRA: all 13 MSI bands (B1 … B12 with B8A)
SPECTRA_BANDS = tuple(S2_BANDS)

# L1C TOA reflectance × 10000, columns in S2_BANDS order:
#                 B1    B2    B3    B4    B5    B6    B7    B8   B8A   B9  B10   B11   B12
SPECTRA: dict[str, tuple[int, ...]] = {
    "forest":       (1150,  820,  700,  450,  900, 2000, 2400, 2550, 2700, 800, 12, 1400,  620),
    "pasture":      (1250,  930,  880,  820, 1250, 1950, 2250, 2400, 2550, 780, 14, 2400, 1500),
    "bare_soil":    (1350, 1080, 1130, 1380, 1700, 1950, 2100, 2200, 2300, 820, 15, 3000, 2400),
    "water":        (1200,  860,  640,  400,  330,  270,  250,  230,  210,  80,  8,  110,   70),
    "river_water":  (1250,  950,  850,  650,  560,  420,  380,  350,  320, 120,  9,  190,  120),
    "town":         (1400, 1180, 1150, 1220, 1450, 1750, 1900, 2000, 2100, 720, 15, 2500, 2100),
    "sand_bar":     (1600, 1500, 1650, 1900, 2150, 2300, 2400, 2500, 2600, 950, 16, 3300, 2600),
    "iron_ore":     (1200,  900,  820,  900, 1050, 1150, 1200, 1250, 1300, 480, 12, 1700, 1500),
    "iron_bench":   (1350, 1100, 1100, 1350, 1600, 1750, 1850, 1900, 1950, 700, 14, 2600, 2200),
    "quarry_sand":  (1850, 1850, 2050, 2300, 2500, 2650, 2750, 2850, 2950, 1100, 17, 3700, 3000),
    "quarry_gravel": (1650, 1550, 1600, 1650, 1800, 1900, 2000, 2050, 2100, 850, 16, 3000, 2700),
    "garimpo_soil": (1450, 1300, 1450, 1750, 2000, 2150, 2250, 2350, 2450, 900, 15, 3300, 2700),
    "mud_pond":     (1400, 1250, 1350, 1500, 1500, 1300, 1200, 1100, 1050, 420, 11,  700,  420),
    "tailings":     (1350, 1250, 1300, 1450, 1500, 1350, 1250, 1150, 1100, 400, 10,  650,  400),
    "tailings_beach": (1600, 1550, 1700, 1950, 2150, 2250, 2300, 2350, 2400, 880, 15, 3000, 2500),
    "dam_wall":     (1600, 1500, 1650, 1950, 2200, 2350, 2450, 2550, 2650, 980, 16, 3400, 2800),
    "pit_lake":     (1250,  950,  800,  600,  520,  400,  360,  330,  300, 110,  9,  170,  110),
}

#: relative amplitude of a material's spatial texture (canopy shadow, tillage, ripples)
TEXTURE: dict[str, float] = {
    "forest": 0.07, "pasture": 0.09, "bare_soil": 0.10, "water": 0.03, "river_water": 0.04,
    "town": 0.16, "sand_bar": 0.06, "iron_ore": 0.10, "iron_bench": 0.08, "quarry_sand": 0.07,
    "quarry_gravel": 0.09, "garimpo_soil": 0.12, "mud_pond": 0.05, "tailings": 0.05,
    "tailings_beach": 0.06, "dam_wall": 0.05, "pit_lake": 0.03,
}

#: added to every pixel × the haze field: path radiance, mostly in the short wavelengths
_HAZE = (260, 210, 150, 100, 70, 50, 40, 35, 30, 15, 2, 10, 5)
#: sensor noise σ per band (DN): ~0.4 % of a typical land signal plus a floor; B10 is quiet
_NOISE = tuple(1.0 if b == "B10" else 5.0 + 0.004 * v
               for b, v in zip(S2_BANDS, (1250, 930, 880, 820, 1250, 1950, 2250, 2400, 2550,
                                          780, 14, 2400, 1500)))


@dataclass(frozen=True, slots=True)
class ObjectKind:
    name: str
    is_target: bool
    impact: str | None
    #: ANM register spelling of the ore(s) the object is drawn with (one is picked)
    ores: tuple[str, ...] = ()


KINDS: dict[str, ObjectKind] = {
    k.name: k
    for k in (
        ObjectKind("open_pit_iron", True, "high", ("Minério de Ferro",)),
        ObjectKind("quarry_sand", True, "low", ("Areia",)),
        ObjectKind("quarry_gravel", True, "low", ("Cascalho",)),
        ObjectKind("garimpo", True, "high", ("Ouro",)),
        ObjectKind("tailings_dam", True, "high", ("Minério de Ferro", "Ouro")),
        ObjectKind("water_dam", False, None),
        ObjectKind("river_bank", False, None),
        ObjectKind("town", False, None),
        ObjectKind("bare_soil", False, None),
    )
}
_MINE_KINDS = ("open_pit_iron", "quarry", "garimpo")  # "quarry" → sand or gravel
# the paper's false positives first, so even a small scene gets both
_LOOKALIKE_CYCLE = ("water_dam", "river_bank", "bare_soil", "water_dam", "river_bank", "town")


@dataclass(frozen=True)
class TruthObject:
    id: str
    kind: str
    is_target: bool
    impact: str | None
    ore: str | None
    polygon_pixels: "Polygon"  # x = column, y = row; pixel (r, c) covers [c, c+1) × [r, r+1)
    polygon_lonlat: "Polygon"


@dataclass(frozen=True)
class SceneTruth:
    path: str
    size: int
    transform: "Affine"
    crs: str
    bands: tuple[str, ...]
    objects: tuple[TruthObject, ...]

    @property
    def targets(self) -> tuple[TruthObject, ...]:
        return tuple(o for o in self.objects if o.is_target)

    @property
    def lookalikes(self) -> tuple[TruthObject, ...]:
        return tuple(o for o in self.objects if not o.is_target)

    @property
    def area_km2(self) -> float:
        return (self.size * 10 / 1000) ** 2


@dataclass(frozen=True, slots=True)
class ChipInfo:
    """Where a training chip came from: top-left pixel in its scene, and why it was drawn."""

    scene: str
    row: int
    col: int
    size: int
    label: str
    source: str  # "target", "lookalike" or "background"
    object_id: str | None
    transform: "Affine"


