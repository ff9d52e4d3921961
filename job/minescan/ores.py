"""Ore name → environmental impact class (Balaniuk et al. 2020, §3.4; docs/ARCHITECTURE.md, "The networks").

The paper's classes: high = lead, iron, niobium, zinc, copper, phosphate, nickel, schist,
manganese, bauxite; low = sand, gravel, clay, stones; no_ore = soil, rocks, vegetation.
Gold is the paper's stated exception (mercury): its impact is a setting, `high` by default.

Ore names arrive in Portuguese from the ANM register, with qualifiers (`Minério de Ferro`,
`Argila Arenosa`, `Bauxita Grau Não Metalúrgico`, `Rocha Aurífera`), so matching is on
whole words of the accent- and case-folded name against each ore's aliases; a name that
matches no alias is *unknown* and reported, never guessed.

The `no_ore` ores (soil, rocks, vegetation) describe places without mining, so they match
only a whole name (`rocha`), never a qualifier: in a register of mines, `Rocha Fosfática`
is phosphate and `Rocha Carbonática` is an ore this table does not know.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import InputError
from .validation import validate

Impact = Literal["high", "low", "no_ore"]
#: the impact classes, most harmful first: the impact network's softmax order too
IMPACT_CLASSES: tuple[Impact, ...] = ("high", "low", "no_ore")


class Ore(BaseModel):
    """One ore: its impact class and the words that name it (any language, any accents)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    impact: Impact = Field(description="impact class of waste from this ore")
    aliases: tuple[str, ...] = Field(
        description="whole words or phrases naming the ore, matched accent/case-insensitively"
    )
    whole_name_only: bool = Field(
        False, description="match only when the alias is the entire name (generic no-ore words)"
    )


# Portuguese forms include the adjectives the ANM register uses (aurífero, fosfática, ...).
DEFAULT_ORES: dict[str, Ore] = {
    "lead": Ore(impact="high", aliases=("lead", "chumbo", "galena")),
    "iron": Ore(impact="high", aliases=("iron", "ferro", "ferrifero", "hematita", "itabirito", "magnetita")),
    "niobium": Ore(impact="high", aliases=("niobium", "niobio", "pirocloro")),
    "zinc": Ore(impact="high", aliases=("zinc", "zinco")),
    "copper": Ore(impact="high", aliases=("copper", "cobre", "cuprifero")),
    "phosphate": Ore(impact="high", aliases=("phosphate", "fosfato", "fosfatica", "fosfatico", "apatita")),
    "nickel": Ore(impact="high", aliases=("nickel", "niquel", "niquelifero")),
    "schist": Ore(impact="high", aliases=("schist", "xisto")),
    "manganese": Ore(impact="high", aliases=("manganese", "manganes")),
    "bauxite": Ore(impact="high", aliases=("bauxite", "bauxita")),
    "gold": Ore(impact="high", aliases=("gold", "ouro", "aurifero", "aurifera")),
    "sand": Ore(impact="low", aliases=("sand", "areia")),
    "gravel": Ore(impact="low", aliases=("gravel", "cascalho", "saibro")),
    "clay": Ore(impact="low", aliases=("clay", "argila")),
    "stones": Ore(impact="low", aliases=("stone", "stones", "pedra", "pedras", "brita")),
    "soil": Ore(impact="no_ore", aliases=("soil", "solo"), whole_name_only=True),
    "rocks": Ore(impact="no_ore", aliases=("rock", "rocks", "rocha", "rochas"), whole_name_only=True),
    "vegetation": Ore(impact="no_ore", aliases=("vegetation", "vegetacao"), whole_name_only=True),
}


class OreMapping(BaseModel):
    """The ore table in use: the defaults, or a user's JSON file of the same shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ores: dict[str, Ore] = Field(default_factory=lambda: dict(DEFAULT_ORES))
    gold_impact: Impact = Field("high", description="impact of gold (the paper's exception)")


class OreMatch(BaseModel):
    """How one name was classified."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    ores: tuple[str, ...] = Field(description="ores recognised in the name, in table order")
    impact: Impact


class OreReport(BaseModel):
    """Classification of a list of names, with counts and the names nobody knows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    matches: dict[str, OreMatch] = Field(description="distinct known name → match")
    counts: dict[str, int] = Field(description="impact class → number of names (with repeats)")
    unknown: dict[str, int] = Field(description="unknown name → occurrences")


def fold(text: str) -> str:
    """Lower-case, strip accents, collapse everything that is not a letter/digit to spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.findall(r"[a-z0-9]+", ascii_only.casefold()))


def _impact_of(ore: str, mapping: OreMapping) -> Impact:
    return mapping.gold_impact if ore == "gold" else mapping.ores[ore].impact


def classify_ore(name: str, mapping: OreMapping | None = None) -> OreMatch | None:
    """Classify one ore name; None when no alias matches.

    A name naming ores of different impacts (`Ouro e Areia`) takes the highest impact:
    a mixed site produces the worst of its wastes.
    """
    mapping = mapping or OreMapping()
    folded = fold(name)
    padded = f" {folded} "
    found = []
    for ore, entry in mapping.ores.items():
        for alias in entry.aliases:
            alias_f = fold(alias)
            hit = folded == alias_f if entry.whole_name_only else f" {alias_f} " in padded
            if hit:
                found.append(ore)
                break
    if not found:
        return None
    impact = min((_impact_of(o, mapping) for o in found), key=IMPACT_CLASSES.index)
    return OreMatch(name=name, ores=tuple(found), impact=impact)


def classify_ores(names: Iterable[str], mapping: OreMapping | None = None) -> OreReport:
    """Classify many names (repeats allowed); unknown and empty names are counted apart."""
    mapping = mapping or OreMapping()
    occurrences = Counter(n.strip() for n in names)
    matches: dict[str, OreMatch] = {}
    unknown: dict[str, int] = {}
    counts = {impact: 0 for impact in IMPACT_CLASSES}
    for name, n in occurrences.items():
        match = classify_ore(name, mapping) if name else None
        if match is None:
            unknown[name] = n
        else:
            matches[name] = match
            counts[match.impact] += n
    return OreReport(matches=matches, counts=counts, unknown=unknown)


def load_ore_mapping(path: str | Path | None = None, gold_impact: Impact | None = None) -> OreMapping:
    """The default table, or a JSON file `{"ores": {...}, "gold_impact": ...}`; flags win."""
    if path is None:
        mapping = OreMapping()
    else:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read ore mapping {path}: {exc}") from None
        mapping = validate(OreMapping, raw, f"ore mapping {path} is invalid")
    if gold_impact is not None:
        mapping = mapping.model_copy(update={"gold_impact": gold_impact})
    return mapping
