"""Analyst verdicts: carried from one run's sites to the next, and read back for training.

The paper's analysts confirmed every detection by eye and corrected the maps by hand
(Balaniuk et al. 2020, §4.3); "feeding these false positives back into the training data"
is the improvement they name. A sites table carries `review` (`confirmed`,
`false_positive`, `unsure`) and `review_note`. An analyst edits them in a copy of
`sites.csv` (or the GeoJSON/GeoParquet); `minescan reduce --reviews FILE` carries every
verdict to the same site of the new run:

1. by `site_id` (ids are place-derived, so the same site has the same id);
2. failing that, by place: a verdict whose row also has `lon`/`lat` (every sites table
   does) goes to the new site whose footprint holds that point, if that site has no
   verdict of its own yet. This keeps verdicts through an id change (a site grown to the
   north, a merge).

Verdicts that find no site are counted and listed in the summary, never lost silently.
`minescan train discovery --points reviewed_sites.csv` reads confirmed sites as `mine` and
false positives as `not_mine` hard negatives (see `training.data.point_labels`).
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from .layers import localize_input

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

VERDICTS = ("confirmed", "false_positive", "unsure")
_SYNONYMS = {
    "confirmed": "confirmed", "confirm": "confirmed", "true_positive": "confirmed", "tp": "confirmed",
    "yes": "confirmed", "confirmado": "confirmed", "confirmada": "confirmed",
    "false_positive": "false_positive", "fp": "false_positive", "no": "false_positive",
    "falso_positivo": "false_positive",
    "unsure": "unsure", "maybe": "unsure", "uncertain": "unsure", "incerto": "unsure", "duvida": "unsure",
}
#: training labels of the discovery network a verdict stands for
DISCOVERY_LABEL = {"confirmed": "mine", "false_positive": "not_mine"}


def normalise_verdict(value: object, where: str) -> str | None:
    """`False positive`, `false-positive`, `FP` → `false_positive`; empty → None; unknown: InputError."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = re.sub(r"[\s\-]+", "_", str(value).strip().casefold())
    if not text:
        return None
    if text not in _SYNONYMS:
        raise InputError(f"{where}: review {value!r} is not one of {list(VERDICTS)}")
    return _SYNONYMS[text]


@dataclass(frozen=True)
class Reviews:
    """Verdicts by site id: columns site_id, review, review_note, lon, lat (NaN if unknown)."""

    path: str
    table: pd.DataFrame


def read_reviews(path: str) -> Reviews:
    """A reviewed sites table (CSV, GeoJSON, GeoPackage, GeoParquet) → its verdicts."""
    import pandas as pd

    suffix = Path(path).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="minescan-reviews-") as tmp:
        local = localize_input(path, tmp, "reviews file", file=True)
        try:
            if suffix in (".csv", ".tsv", ".txt"):
                frame = pd.read_csv(local, sep=None, engine="python", dtype=str, keep_default_na=False,
                                    encoding="utf-8-sig")
            elif suffix == ".parquet":
                frame = pd.read_parquet(local)
            else:
                import geopandas as gpd

                frame = pd.DataFrame(gpd.read_file(local).drop(columns="geometry", errors="ignore"))
        except Exception as exc:  # noqa: BLE001 - pandas/pyogrio raise many types for a bad file
            raise InputError(f"cannot read reviews file {path}: {exc}") from None
    for column in ("site_id", "review"):
        if column not in frame.columns:
            raise InputError(f"reviews file {path} has no {column!r} column: give an edited sites table")
    verdicts = [normalise_verdict(v, f"{path} row {i + 2}") for i, v in enumerate(frame["review"])]
    note = frame["review_note"] if "review_note" in frame.columns else pd.Series([None] * len(frame))
    table = pd.DataFrame({
        "site_id": frame["site_id"].astype(str).str.strip(),
        "review": pd.array(verdicts, dtype="string"),
        "review_note": pd.array([None if _blank(v) else str(v) for v in note], dtype="string"),
        "lon": pd.to_numeric(frame["lon"], errors="coerce") if "lon" in frame.columns else np.nan,
        "lat": pd.to_numeric(frame["lat"], errors="coerce") if "lat" in frame.columns else np.nan,
    })
    table = table[table["review"].notna()].drop_duplicates("site_id", keep="last").reset_index(drop=True)
    return Reviews(path=path, table=table)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""


@dataclass(frozen=True)
class CarriedReviews:
    review: pd.Series
    note: pd.Series
    by_id: int
    by_place: int
    unplaced: tuple[str, ...]


def carry_reviews(site_ids: pd.Series, footprints: np.ndarray, reviews: Reviews | None) -> CarriedReviews:
    """Verdict and note per site (aligned with `site_ids`), by id, then by place."""
    import pandas as pd
    import shapely

    n = len(site_ids)
    review = pd.Series(pd.array([None] * n, dtype="string"))
    note = review.copy()
    if reviews is None or reviews.table.empty:
        return CarriedReviews(review, note, 0, 0, ())
    table = reviews.table
    position = pd.Series(np.arange(n), index=site_ids.to_numpy())
    by_id = table["site_id"].isin(position.index)
    rows = position[table.loc[by_id, "site_id"]].to_numpy()
    review.iloc[rows] = table.loc[by_id, "review"].to_numpy()
    note.iloc[rows] = table.loc[by_id, "review_note"].to_numpy()
    rest = table[~by_id & table["lon"].notna() & table["lat"].notna()]
    placed = 0
    if len(rest) and n:
        points = shapely.points(rest["lon"].to_numpy(float), rest["lat"].to_numpy(float))
        point_idx, site_idx = shapely.STRtree(footprints).query(points, predicate="within")
        for p, s in sorted(zip(point_idx, site_idx, strict=True)):
            if pd.isna(review.iloc[s]):
                review.iloc[s] = rest["review"].iloc[p]
                note.iloc[s] = rest["review_note"].iloc[p]
                placed += 1
        found = set(point_idx.tolist())
        unplaced = [sid for k, sid in enumerate(rest["site_id"]) if k not in found]
    else:
        unplaced = list(rest["site_id"])
    unplaced += list(table.loc[~by_id & (table["lon"].isna() | table["lat"].isna()), "site_id"])
    if unplaced:
        log.warning("%d review verdict(s) found no site in this run, e.g. %s", len(unplaced), unplaced[0],
                    extra={"reviews_unplaced": len(unplaced)})
    return CarriedReviews(review, note, int(by_id.sum()), placed, tuple(unplaced))
