"""The four post-classification filters on hand-made arrays whose expected outputs are written out.

M = mining (30), N = not mining (0), _ = no data (255). One-pixel series are (year, 1, 1)
cubes; the spatial cases are single-year maps written as rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from minescan.errors import InputError
from minescan.series.filters import (
    MINING,
    NO_YEAR,
    NODATA,
    NOT_MINING,
    FilterResult,
    apply_filters,
    frequency_filter,
    gap_fill,
    spatial_filter,
    temporal_filter,
)

M, N, _ = MINING, NOT_MINING, NODATA


def series(*values: int) -> np.ndarray:
    """One pixel's classes over the years, as a (year, 1, 1) cube."""
    return np.array(values, dtype=np.uint8).reshape(-1, 1, 1)


def flat(cube: np.ndarray) -> list[int]:
    return cube.reshape(-1).tolist()


def year_map(rows: str) -> np.ndarray:
    """A one-year (1, y, x) cube from rows of 'M' (mining), '.' (not mining) and '_' (no data)."""
    codes = {"M": M, ".": N, "_": _}
    return np.array([[[codes[c] for c in row] for row in rows.split()]], dtype=np.uint8)


# ---- gap-fill (ATBD §5.1, Figure 5) ------------------------------------------------------------


def test_gap_fill_takes_the_next_future_year_first_then_up_to_three_years_back():
    years = range(2000, 2010)
    filled, year_mask = gap_fill(series(N, _, _, M, _, N, _, _, _, _), years)
    assert flat(filled) == [N, M, M, M, N, N, N, N, N, _]
    assert flat(year_mask) == [2000, 2003, 2003, 2003, 2005, 2005, 2005, 2005, 2005, NO_YEAR]


def test_gap_fill_prefers_a_distant_future_year_over_the_previous_one():
    filled, year_mask = gap_fill(series(M, _, _, _, _, _, N), range(1985, 1992))
    assert flat(filled) == [M, N, N, N, N, N, N]
    assert flat(year_mask) == [1985, 1991, 1991, 1991, 1991, 1991, 1991]


def test_gap_fill_counts_three_calendar_years_back_not_three_layers():
    filled, year_mask = gap_fill(series(M, _, _), [2000, 2002, 2004])
    assert flat(filled) == [M, M, _]
    assert flat(year_mask) == [2000, 2000, NO_YEAR]


def test_gap_fill_leaves_a_pixel_that_is_never_observed_as_no_data():
    filled, year_mask = gap_fill(series(_, _, _), [2001, 2002, 2003])
    assert flat(filled) == [_, _, _]
    assert flat(year_mask) == [NO_YEAR] * 3
    assert year_mask.dtype == np.int16


def test_gap_fill_works_pixel_by_pixel():
    cube = np.array([[[_, M]], [[N, _]]], dtype=np.uint8)  # (2 years, 1 row, 2 cols)
    filled, year_mask = gap_fill(cube, [2010, 2011])
    assert filled.tolist() == [[[N, M]], [[N, M]]]
    assert year_mask.tolist() == [[[2011, 2010]], [[2011, 2010]]]


# ---- temporal (ATBD §5.2, Table 4) -------------------------------------------------------------


def test_temporal_filter_applies_table_4s_generic_rule():
    assert flat(temporal_filter(series(M, N, M))) == [M, M, M]
    assert flat(temporal_filter(series(N, M, N))) == [N, N, N]


def test_temporal_filter_keeps_transitions_in_their_year():
    # The published script's extra rule (third year takes the first two's class when they
    # agree) would give N N N M M and M M M N N: every opening and closing a year late.
    assert flat(temporal_filter(series(N, N, M, M, M))) == [N, N, M, M, M]
    assert flat(temporal_filter(series(M, M, N, N, N))) == [M, M, N, N, N]


def test_temporal_filter_window_moves_forward_over_corrected_years():
    # Each window sees the previous window's correction: no forbidden ternary is left.
    assert flat(temporal_filter(series(M, N, M, N, M))) == [M, M, M, M, M]
    assert flat(temporal_filter(series(N, M, N, M, N))) == [N, N, N, N, N]


def test_temporal_filter_never_changes_the_first_and_last_year():
    assert flat(temporal_filter(series(M, N, N))) == [M, N, N]
    assert flat(temporal_filter(series(N, N, M))) == [N, N, M]
    assert flat(temporal_filter(series(M, N))) == [M, N]


def test_temporal_filter_skips_windows_with_no_data():
    assert flat(temporal_filter(series(M, _, M))) == [M, _, M]
    assert flat(temporal_filter(series(_, M, _))) == [_, M, _]


# ---- spatial (ATBD §5.3) -----------------------------------------------------------------------


def test_spatial_filter_removes_mining_patches_under_ten_pixels():
    # A 9-pixel mining patch: the published script filters class 10 and leaves it mining.
    cube = year_map("""
        .....
        .MMM.
        .MMM.
        .MMM.
        .....
    """)
    assert spatial_filter(cube).tolist() == year_map("""
        .....
        .....
        .....
        .....
        .....
    """).tolist()


def test_spatial_filter_keeps_a_ten_pixel_patch():
    cube = year_map("""
        MMMMM.
        MMMMM.
        ......
    """)
    assert spatial_filter(cube).tolist() == cube.tolist()


def test_spatial_filter_joins_patches_through_corners():
    # 5 + 5 pixels touching only diagonally: one 10-pixel patch with eight neighbours.
    cube = year_map("""
        MMMMM......
        .....MMMMM.
    """)
    assert spatial_filter(cube).tolist() == cube.tolist()


def test_spatial_filter_acts_only_on_mining():
    # The one-pixel hole inside a mine and the small no-data speck stay as they are.
    cube = year_map("""
        MMMM_.
        M.MM..
        MMMM..
    """)
    assert spatial_filter(cube).tolist() == cube.tolist()


def test_spatial_filter_works_year_by_year():
    big = year_map("MMMMMMMMMM")[0]
    small = year_map("MMMMMMMMM.")[0]
    out = spatial_filter(np.stack([big, small]))
    assert out[0].tolist() == big.tolist()
    assert out[1].tolist() == [[N] * 10]


# ---- frequency (ATBD §5.4) ---------------------------------------------------------------------


def twenty_years(mining_years: int) -> np.ndarray:
    return series(*([M] * mining_years + [N] * (20 - mining_years)))


def test_frequency_filter_removes_mining_in_under_ten_percent_of_the_years():
    assert flat(frequency_filter(twenty_years(1))) == [N] * 20


def test_frequency_filter_divides_by_the_series_own_year_count():
    # 2 of 20 years is exactly 10 % and 3 of 20 is 15 %: both stay. The published script
    # divides by 34 and removes at <= 10 % (5.9 % and 8.8 %), so it would remove both.
    assert flat(frequency_filter(twenty_years(2))) == flat(twenty_years(2))
    assert flat(frequency_filter(twenty_years(3))) == flat(twenty_years(3))


def test_frequency_filter_matches_the_texts_example_of_37_years():
    three = series(*([M] * 3 + [N] * 34))
    four = series(*([M] * 4 + [N] * 33))
    assert flat(frequency_filter(three)) == [N] * 37
    assert flat(frequency_filter(four)) == flat(four)


def test_frequency_filter_counts_no_data_years_in_the_series():
    # 1 mining year of 10 is 10 %: kept, though 5 of the years are no data.
    cube = series(M, _, _, _, _, _, N, N, N, N)
    assert flat(frequency_filter(cube)) == flat(cube)


def test_frequency_filter_keeps_exactly_ten_percent_of_thirty_years():
    cube = series(*([M] * 3 + [N] * 27))
    assert flat(frequency_filter(cube)) == flat(cube)


# ---- the chain ---------------------------------------------------------------------------------


def test_apply_filters_runs_the_four_in_the_texts_order():
    years = list(range(2000, 2010))
    cube = np.zeros((10, 12, 12), dtype=np.uint8)
    # a 16-pixel mine with a cloud gap (filled from 2004) and a one-year blip in 2006
    cube[:, 0:4, 0:4] = series(N, N, M, _, M, M, N, M, M, M)
    cube[0, 8:11, 0:3] = M  # a 9-pixel patch in the first year, never a window's centre
    cube[5:7, 11, 11] = M  # one pixel mined two years running: the temporal rule keeps it
    result = apply_filters(cube, years)
    assert isinstance(result, FilterResult)
    assert flat(result.classes[:, 0:1, 0:1]) == [N, N, M, M, M, M, M, M, M, M]
    assert (result.classes[:, 0:4, 0:4] == result.classes[:, 0:1, 0:1]).all()
    assert flat(result.year_mask[:, 0:1, 0:1]) == [2000, 2001, 2002, 2004, 2004, 2005, 2006, 2007, 2008, 2009]
    assert not result.classes[:, 4:, :].any() and not result.classes[:, :, 4:].any()
    assert result.counts() == {"gap_filled": 16, "temporal": 16, "spatial": 11, "frequency": 0}


def test_apply_filters_frequency_after_spatial():
    years = list(range(2000, 2020))
    cube = np.zeros((20, 4, 4), dtype=np.uint8)
    # a 16-pixel patch in the first year of 20: no temporal window is centred on it, the
    # spatial filter keeps it, the frequency filter (1 year in 20 is 5 %) removes it
    cube[0, :, :] = M
    result = apply_filters(cube, years)
    assert not result.classes.any()
    assert (result.spatial, result.frequency) == (0, 16)


def test_apply_filters_result_is_read_only():
    result = apply_filters(np.zeros((3, 2, 2), dtype=np.uint8), [2000, 2001, 2002])
    with pytest.raises(ValueError):
        result.classes[0, 0, 0] = M


@pytest.mark.parametrize(
    ("cube", "years", "message"),
    [
        (np.zeros((2, 2), np.uint8), [2000, 2001], "shape"),
        (np.zeros((2, 2, 2), np.int16), [2000, 2001], "uint8"),
        (np.full((2, 2, 2), 1, np.uint8), [2000, 2001], "values"),
        (np.zeros((2, 2, 2), np.uint8), [2000], "labels"),
        (np.zeros((2, 2, 2), np.uint8), [2001, 2000], "increasing"),
    ],
)
def test_bad_cubes_are_input_errors(cube, years, message):
    with pytest.raises(InputError, match=message):
        apply_filters(cube, years)
