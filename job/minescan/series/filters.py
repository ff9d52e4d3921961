"""The four post-classification filters of the MapBiomas mining map, as the method's text says.

MapBiomas mining ATBD, Collection 9, §5: gap-fill (§5.1), temporal (§5.2, Table 4),
spatial (§5.3) and frequency (§5.4), applied in that order to the annual binary maps.
Every function here is pure numpy over a (year, y, x) uint8 cube whose values are
`NOT_MINING` (0), `MINING` (30, the MapBiomas class id) or `NODATA` (255).

Where MapBiomas' published Earth Engine scripts differ from their own text, the text wins:

* spatial: the published script runs its small-patch filter on class 10, so it never
  touches mining (class 30); here 8-connected mining patches under 10 pixels are removed.
* temporal: the published script adds a rule that sets the third year of a window to the
  class of the first two whenever those agree, which delays every opening and closing by
  one year; here only Table 4's generic rule exists.
* frequency: the published script divides the count of mining years by 34 while its series
  has 35 years, and removes at `<=` 10 %; here the count is divided by the number of years
  of the series itself and removed below 10 %, as "less than 10 % temporal persistence".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError

NOT_MINING = 0
#: the MapBiomas land-use class of mining (the product's generic mining class)
MINING = 30
NODATA = 255
#: the year mask's value where a pixel is still no data after gap-filling
NO_YEAR = 0

#: §5.1: "Up to three prior years can fill in persistent no-data pixels"
MAX_YEARS_BACK = 3
#: §5.3: "the minimum mapping unit ... was defined as 10 pixels (~1 ha)"
MIN_PATCH_PIXELS = 10
#: §5.4: "all class occurrences with less than 10% temporal persistence ... are filtered out"
MIN_MINING_FRACTION = 0.10

#: 8-connectivity: Earth Engine's connectedPixelCount with eightConnected=true
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
_VALUES = np.array([NOT_MINING, MINING, NODATA], dtype=np.uint8)
#: True at each allowed uint8 value: indexing it checks a cube without bincount's int64 copy
_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[_VALUES] = True


@dataclass(frozen=True)
class FilterResult:
    """The filtered cube, where each value came from, and how many values each filter changed.

    Counts are of (year, y, x) values, not of distinct pixels.
    """

    classes: np.ndarray
    #: calendar year each value of `classes` was taken from by the gap-fill (int16);
    #: `NO_YEAR` where the pixel is still no data
    year_mask: np.ndarray
    gap_filled: int
    temporal: int
    spatial: int
    frequency: int

    def counts(self) -> dict[str, int]:
        return {
            "gap_filled": self.gap_filled,
            "temporal": self.temporal,
            "spatial": self.spatial,
            "frequency": self.frequency,
        }


def check_classes(classes: np.ndarray) -> np.ndarray:
    """The cube as a (year, y, x) uint8 array of known class values, or an InputError."""
    cube = np.asarray(classes)
    if cube.ndim != 3:
        raise InputError(f"a class cube is (year, y, x); got an array of shape {cube.shape}")
    if cube.dtype != np.uint8:
        raise InputError(f"a class cube is uint8 ({NOT_MINING}/{MINING}/{NODATA}); got {cube.dtype}")
    if not _ALLOWED[cube].all():
        unknown = np.setdiff1d(np.unique(cube), _VALUES)
        raise InputError(
            f"class cube holds values {unknown[:5].tolist()}: only {NOT_MINING} (not mining), "
            f"{MINING} (mining) and {NODATA} (no data) are allowed"
        )
    return cube


def check_years(years: Sequence[int], count: int) -> np.ndarray:
    """The calendar years as int16, one per cube layer, strictly increasing."""
    yrs = np.asarray(years)
    if yrs.ndim != 1 or yrs.size != count:
        raise InputError(f"the cube has {count} years but {yrs.size} year labels were given")
    if not np.issubdtype(yrs.dtype, np.integer) or (yrs.size and (yrs.min() < 1 or yrs.max() > 9999)):
        raise InputError(f"years must be calendar years (integers 1..9999); got {yrs[:5].tolist()}")
    if np.any(np.diff(yrs) <= 0):
        raise InputError(f"years must be strictly increasing; got {yrs.tolist()}")
    return yrs.astype(np.int16)


def gap_fill(classes: np.ndarray, years: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Fill no-data years from the nearest valid year: the future first, else up to 3 years back.

    ATBD §5.1 and Figure 5: a no-data value takes the next valid future classification; "if
    no future valid class is available, the no-data value is replaced by the nearest previous
    valid class", from at most three prior (calendar) years. Only original valid values fill
    a gap, never filled ones, so a pixel whose series ends in more than three no-data years
    keeps its last gaps. Returns (filled, year_mask): the calendar year each value came from,
    `NO_YEAR` where none did.
    """
    cube = check_classes(classes)
    yrs = check_years(years, cube.shape[0])
    filled = cube.copy()
    year_mask = np.broadcast_to(yrs[:, np.newaxis, np.newaxis], cube.shape).copy()
    gappy = (cube == NODATA).any(axis=0)  # only these pixels' series need work
    if gappy.any():
        series = cube[:, gappy]  # (year, pixel)
        source = _fill_sources(series != NODATA, yrs)
        found = source >= 0
        index = np.maximum(source, 0)
        filled[:, gappy] = np.where(found, np.take_along_axis(series, index, axis=0), np.uint8(NODATA))
        year_mask[:, gappy] = np.where(found, yrs[index], np.int16(NO_YEAR))
    return filled, year_mask


def _fill_sources(valid: np.ndarray, yrs: np.ndarray) -> np.ndarray:
    """For (year, pixel) validity, the year index each value is taken from; -1 where none."""
    source = np.full(valid.shape, -1, dtype=np.int16)
    following = np.full(valid.shape[1:], -1, dtype=np.int16)
    for t in reversed(range(valid.shape[0])):
        following = np.where(valid[t], np.int16(t), following)
        source[t] = following
    previous = np.full(valid.shape[1:], -1, dtype=np.int16)
    for t in range(valid.shape[0]):
        reach_back = (previous >= 0) & (yrs[t] - yrs[np.maximum(previous, 0)] <= MAX_YEARS_BACK)
        source[t] = np.where((source[t] < 0) & reach_back, previous, source[t])
        previous = np.where(valid[t], np.int16(t), previous)
    return source


def temporal_filter(classes: np.ndarray) -> np.ndarray:
    """Table 4's generic rule in a 3-year window moving forward through the series.

    ATBD §5.2: the window's central year "changes its value if it differs from the first and
    last years in the ternary, which must have identical classes", and takes their class
    (Mi N-Mi Mi → Mi Mi Mi; N-Mi Mi N-Mi → N-Mi N-Mi N-Mi). The window is unidirectional:
    it moves from the first year to the last and each window sees the years the previous one
    already corrected, so after one pass no year is left differing from two equal neighbours
    (an alternating Mi N-Mi Mi N-Mi Mi becomes all Mi; applying the rule to every year at once
    would leave Mi Mi N-Mi Mi Mi). The first and last years are never a window's centre.
    The rule is defined over mining and not mining, so a window holding no data is skipped.
    """
    cube = check_classes(classes)
    out = cube.copy()
    for t in range(1, cube.shape[0] - 1):
        first, centre, last = out[t - 1], out[t], out[t + 1]
        flip = (first == last) & (centre != first) & (first != NODATA) & (centre != NODATA)
        out[t] = np.where(flip, first, centre)
    return out


def spatial_filter(classes: np.ndarray, min_pixels: int = MIN_PATCH_PIXELS) -> np.ndarray:
    """Remove 8-connected mining patches of fewer than `min_pixels` pixels, year by year.

    ATBD §5.3: connected components are found as Earth Engine's connectedPixelCount does
    (eight neighbours); a mining patch needs "at least ten connected pixels" to stay, which
    makes 10 pixels (~1 ha) the minimum mapping unit. A removed patch is replaced from its
    neighbourhood: every pixel around an 8-connected mining patch is, by definition, not
    mining, so it becomes `NOT_MINING`. Other classes are left as they are.
    """
    cube = check_classes(classes)
    if min_pixels < 1:
        raise InputError(f"min_pixels must be at least 1; got {min_pixels}")
    out = cube.copy()
    for t in range(cube.shape[0]):
        small = small_patches(cube[t] == MINING, min_pixels)
        out[t][small] = NOT_MINING
    return out


def small_patches(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """Pixels of `mask` whose 8-connected component has fewer than `min_pixels` pixels."""
    labels, count = ndimage.label(mask, structure=EIGHT_CONNECTED)
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    too_small = sizes < min_pixels
    too_small[0] = False  # label 0 is the background
    return too_small[labels]


def frequency_filter(classes: np.ndarray, min_fraction: float = MIN_MINING_FRACTION) -> np.ndarray:
    """A pixel mapped as mining in less than `min_fraction` of the series' years is mining in none.

    ATBD §5.4: "all class occurrences with less than 10% temporal persistence (3 years or
    fewer out of 37) are filtered out and incorporated into the non-class binary". The
    fraction is over N, the number of years in this series (no-data years included, as
    they are years of the series), and a pixel at exactly 10 % stays.
    """
    cube = check_classes(classes)
    if not 0 <= min_fraction <= 1:
        raise InputError(f"min_fraction must be within 0..1; got {min_fraction}")
    mining = cube == MINING
    years_mining = mining.sum(axis=0)
    # count / N is correctly rounded, so exactly 10 % compares equal to 0.10, never below it
    rare = years_mining / cube.shape[0] < min_fraction
    return np.where(mining & rare[np.newaxis], np.uint8(NOT_MINING), cube)


#: the filters of the chain, in the order `filter_stages` applies them
FILTERS = ("gap_fill", "temporal", "spatial", "frequency")


def filter_stages(
    cube: np.ndarray,
    years: Sequence[int],
    *,
    min_pixels: int = MIN_PATCH_PIXELS,
    min_fraction: float = MIN_MINING_FRACTION,
) -> tuple[list[np.ndarray], np.ndarray]:
    """The ATBD §5 chain in the text's order: [the input, then the cube after each of
    `FILTERS`], and the gap-fill's year mask. The one place the chain is spelled out."""
    filled, year_mask = gap_fill(cube, years)
    temporal = temporal_filter(filled)
    spatial = spatial_filter(temporal, min_pixels)
    return [cube, filled, temporal, spatial, frequency_filter(spatial, min_fraction)], year_mask


def apply_filters(
    classes: np.ndarray,
    years: Sequence[int],
    *,
    min_pixels: int = MIN_PATCH_PIXELS,
    min_fraction: float = MIN_MINING_FRACTION,
) -> FilterResult:
    """Gap-fill, temporal, spatial, frequency: the ATBD §5 chain, in the text's order."""
    cube = check_classes(classes)
    (_, filled, temporal, spatial, final), year_mask = filter_stages(
        cube, years, min_pixels=min_pixels, min_fraction=min_fraction)
    for array in (final, year_mask):
        array.flags.writeable = False
    return FilterResult(
        classes=final,
        year_mask=year_mask,
        gap_filled=int(np.count_nonzero(filled != cube)),
        temporal=int(np.count_nonzero(temporal != filled)),
        spatial=int(np.count_nonzero(spatial != temporal)),
        frequency=int(np.count_nonzero(final != spatial)),
    )
