"""Sentinel-2 MSI facts, declared once, and the one rule for finding a model's bands in a file.

The default band list is the authors' code: B1–B12 with B10 (cirrus) and without B8A,
12 bands in that order (Balaniuk et al. 2020, §3.1 and Table 1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Band:
    name: str
    description: str
    centre_um: float
    resolution_m: int


S2_BANDS: dict[str, Band] = {
    b.name: b
    for b in (
        Band("B1", "coastal aerosol", 0.443, 60),
        Band("B2", "blue", 0.490, 10),
        Band("B3", "green", 0.560, 10),
        Band("B4", "red", 0.665, 10),
        Band("B5", "red edge 1", 0.705, 20),
        Band("B6", "red edge 2", 0.740, 20),
        Band("B7", "red edge 3", 0.783, 20),
        Band("B8", "NIR", 0.842, 10),
        Band("B8A", "narrow NIR", 0.865, 20),
        Band("B9", "water vapour", 0.945, 60),
        Band("B10", "SWIR cirrus", 1.375, 60),
        Band("B11", "SWIR 1", 1.610, 20),
        Band("B12", "SWIR 2", 2.190, 20),
    )
}

DEFAULT_BANDS: tuple[str, ...] = (
    "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11", "B12",
)

#: a 10 m pixel in degrees at the equator (WGS84): the pixel of every EPSG:4326 scene grid here
PIXEL_DEG = 360.0 / 40_075_016.686 * 10.0


def check_bands(bands: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Return `bands` as a tuple, or raise ValueError naming the unknown or repeated ones."""
    unknown = [b for b in bands if b not in S2_BANDS]
    if unknown:
        raise ValueError(
            f"unknown Sentinel-2 band(s) {unknown}; valid names are {list(S2_BANDS)}"
        )
    if len(set(bands)) != len(bands):
        raise ValueError(f"band list {list(bands)} repeats a band")
    return tuple(bands)


def select_bands(
    descriptions: tuple[str | None, ...] | list[str | None],
    count: int,
    model_bands: tuple[str, ...] | list[str],
    where: str,
) -> tuple[int, ...]:
    """1-based indexes, in the model's order, of the model's bands in a raster file.

    When the file names every band (GDAL band descriptions, compared without case or
    surrounding spaces) the bands are picked by name, in any order, and a missing one is an
    error; otherwise they are taken by position and the count must match. Scan and training
    both use this rule, so a file that trains a model is a file it can scan.
    """
    from .errors import InputError

    names = [(d or "").strip().upper() for d in descriptions]
    wanted = [b.strip().upper() for b in model_bands]
    if len(names) == count and all(names):
        if all(w in names for w in wanted):
            return tuple(names.index(w) + 1 for w in wanted)
        if any(w in names for w in wanted) or all(n in S2_BANDS for n in names):
            missing = [b for b, w in zip(model_bands, wanted) if w not in names]
            raise InputError(
                f"{where} has bands {names} but the model needs {list(model_bands)}: missing "
                f"{missing}; export the scene with those bands"
            )
    if count != len(model_bands):
        raise InputError(
            f"{where} has {count} bands but the model expects {len(model_bands)} "
            f"({','.join(model_bands)}): export it with the model's bands in that order"
        )
    return tuple(range(1, count + 1))
