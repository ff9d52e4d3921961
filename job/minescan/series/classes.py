"""The mining module's `class_id`: substance and type of a mine in three digits (ATBD Table 3).

MapBiomas mining ATBD, Collection 9, §4 and Table 3: a mining pixel (class 30) that a
register of mines places in a patch takes that mine's type (level 1: `1. Garimpo` or
`2. Industrial`) and substance (levels 2 and 3) as one `class_id`. The table is written once
here, with the ATBD's own Portuguese labels (including its spellings `Molibidênio`,
`Níobio`, `Gráfica`).

Registers name substances in their own words (`Minério de Ferro`, `Aluvião Estanífero`,
`Rocha Aurífera`, `Cromita`), so each substance lists the Portuguese words and phrases that
name it; a name is matched on whole words after the accent- and case-folding of
`minescan.ores.fold`; a phrase inside a longer one does not count (`Areia Industrial` is
silicon, `Areia` a Class 2 mineral) and the first substance named wins (`Ouro e Areia`). Substances without a class of their own go to their group's
generic class (lead, silver and vanadium to 101 `Metálicas`; kaolin, bentonite, vermiculite
to 116 `Não Metálicas`). Table 3 gives garimpo classes only for tin, gold, the non-metallic
group, Class 2 minerals and gems and ornamental stones: a garimpo of any other substance has
no `class_id`, and a name nobody lists has none either; both are reported, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..ores import fold

Kind = Literal["industrial", "garimpo"]
KINDS: tuple[Kind, ...] = ("industrial", "garimpo")

INDUSTRIAL = "2. Industrial"
GARIMPO = "1. Garimpo"


@dataclass(frozen=True)
class MiningClass:
    """One row of the ATBD's Table 3."""

    class_id: int
    level_1: str
    level_2: str
    level_3: str

    @property
    def kind(self) -> Kind:
        return "garimpo" if self.level_1 == GARIMPO else "industrial"


_METAL_I, _NONMETAL_I = "2.2 Metálicas", "2.3 Não Metálicas"
_GEMS_I, _ENERGY_I = "2.4 Pedras Preciosas & Rochas Ornamentais", "2.1 Energéticas"
_METAL_G, _NONMETAL_G = "1.1 Metálicas", "1.2 Não Metálicas"
_GEMS_G = "1.3 Pedras Preciosas & Rochas Ornamentais"

#: MapBiomas mining ATBD, Col. 9, Table 3, in the table's order
TABLE_3: tuple[MiningClass, ...] = (
    MiningClass(101, INDUSTRIAL, _METAL_I, "Metálicas"),
    MiningClass(102, INDUSTRIAL, _METAL_I, "2.2.01 Ferro"),
    MiningClass(103, INDUSTRIAL, _METAL_I, "2.2.02 Manganês"),
    MiningClass(104, INDUSTRIAL, _METAL_I, "2.2.03 Níquel"),
    MiningClass(105, INDUSTRIAL, _METAL_I, "2.2.04 Amianto"),
    MiningClass(106, INDUSTRIAL, _METAL_I, "2.2.05 Molibidênio"),
    MiningClass(107, INDUSTRIAL, _METAL_I, "2.2.06 Titânio"),
    MiningClass(108, INDUSTRIAL, _METAL_I, "2.2.07 Cromo"),
    MiningClass(109, INDUSTRIAL, _METAL_I, "2.2.08 Cobre"),
    MiningClass(110, INDUSTRIAL, _METAL_I, "2.2.09 Alumínio"),
    MiningClass(111, INDUSTRIAL, _METAL_I, "2.2.10 Magnésio"),
    MiningClass(112, INDUSTRIAL, _METAL_I, "2.2.11 Bário"),
    MiningClass(113, INDUSTRIAL, _METAL_I, "2.2.12 Níobio"),
    MiningClass(114, INDUSTRIAL, _METAL_I, "2.2.13 Estanho"),
    MiningClass(115, INDUSTRIAL, _METAL_I, "2.2.14 Ouro"),
    MiningClass(130, INDUSTRIAL, _METAL_I, "2.2.30 Zinco"),
    MiningClass(116, INDUSTRIAL, _NONMETAL_I, "Não Metálicas"),
    MiningClass(117, INDUSTRIAL, _NONMETAL_I, "2.3.01 Minerais Classe 2"),
    MiningClass(118, INDUSTRIAL, _NONMETAL_I, "2.3.02 Fluor"),
    MiningClass(119, INDUSTRIAL, _NONMETAL_I, "2.3.03 Fósforo"),
    MiningClass(120, INDUSTRIAL, _NONMETAL_I, "2.3.04 Gráfica"),
    MiningClass(121, INDUSTRIAL, _NONMETAL_I, "2.3.05 Silício"),
    MiningClass(122, INDUSTRIAL, _NONMETAL_I, "2.3.06 Calcário"),
    MiningClass(123, INDUSTRIAL, _GEMS_I, "Pedras Preciosas & Rochas Ornamentais"),
    MiningClass(124, INDUSTRIAL, _GEMS_I, "Pedras Preciosas"),
    MiningClass(125, INDUSTRIAL, _GEMS_I, "Rochas Ornamentais"),
    MiningClass(126, INDUSTRIAL, _ENERGY_I, "Energéticas"),
    MiningClass(127, INDUSTRIAL, _ENERGY_I, "2.1.01 Carvão mineral"),
    MiningClass(128, INDUSTRIAL, _ENERGY_I, "2.1.02 Urânio"),
    MiningClass(129, INDUSTRIAL, _ENERGY_I, "2.1.03 Gás natural e petróleo"),
    MiningClass(214, GARIMPO, _METAL_G, "1.1.02 Estanho"),
    MiningClass(215, GARIMPO, _METAL_G, "1.1.01 Ouro"),
    MiningClass(216, GARIMPO, _NONMETAL_G, "Não Metálicas"),
    MiningClass(217, GARIMPO, _NONMETAL_G, "1.2.01 Minerais Classe 2"),
    MiningClass(223, GARIMPO, _GEMS_G, "Pedras Preciosas & Rochas Ornamentais"),
    MiningClass(224, GARIMPO, _GEMS_G, "1.3.01 Pedras preciosas"),
    MiningClass(225, GARIMPO, _GEMS_G, "1.3.02 Rochas Ornamentais"),
)
CLASSES: dict[int, MiningClass] = {c.class_id: c for c in TABLE_3}
CLASS_IDS: tuple[int, ...] = tuple(sorted(CLASSES))


@dataclass(frozen=True)
class Substance:
    """A substance of Table 3 (or a group's other substances) and the words that name it."""

    name: str
    industrial: int
    garimpo: int | None
    aliases: tuple[str, ...]


# Aliases are Portuguese words or phrases as registers write them (accents and case do not
# matter); the name itself always matches too. Order only breaks ties of equal length.
SUBSTANCES: tuple[Substance, ...] = (
    Substance("Ferro", 102, None, ("ferrifero", "ferrifera", "hematita", "itabirito", "magnetita")),
    Substance("Manganês", 103, None, ("manganesifero", "pirolusita")),
    Substance("Níquel", 104, None, ("niquelifero", "garnierita")),
    Substance("Amianto", 105, None, ("asbesto", "crisotila")),
    Substance("Molibdênio", 106, None, ("molibidenio", "molibdenita")),
    Substance("Titânio", 107, None, ("ilmenita", "rutilo", "anatasio")),
    Substance("Cromo", 108, None, ("cromita",)),
    Substance("Cobre", 109, None, ("cuprifero", "cuprifera", "calcopirita")),
    Substance("Alumínio", 110, None, ("bauxita",)),
    Substance("Magnésio", 111, None, ("magnesita",)),
    Substance("Bário", 112, None, ("barita", "baritina")),
    Substance("Nióbio", 113, None, ("pirocloro", "columbita")),
    Substance("Estanho", 114, 214, ("estanifero", "estanifera", "cassiterita")),
    Substance("Ouro", 115, 215, ("aurifero", "aurifera")),
    Substance("Zinco", 130, None, ("esfalerita", "calamina", "willemita")),
    Substance("Metálicas", 101, None, (
        "chumbo", "galena", "prata", "vanadio", "tungstenio", "volframita", "tantalo", "tantalita",
        "cobalto", "litio", "espodumenio", "platina", "berilo", "terras raras",
    )),
    Substance("Minerais Classe 2", 117, 217, (
        "areia", "cascalho", "saibro", "brita", "pedra britada", "seixo", "argila", "gnaisse",
    )),
    Substance("Fluor", 118, 216, ("fluorita",)),
    Substance("Fósforo", 119, 216, ("fosfato", "fosfatica", "fosfatico", "apatita")),
    Substance("Grafita", 120, 216, ("grafite", "grafica")),
    Substance("Silício", 121, 216, ("quartzo", "silica", "areia industrial", "areia quartzosa")),
    Substance("Calcário", 122, 216, ("dolomito", "dolomitico", "rocha carbonatica", "marga")),
    Substance("Não Metálicas", 116, 216, (
        "caulim", "bentonita", "vermiculita", "agalmatolito", "talco", "feldspato", "mica",
        "diatomita", "gipsita", "gesso", "silvinita", "potassio", "sal", "sais", "sal gema", "argila refrataria",
        "argila caulinitica",
    )),
    Substance("Pedras Preciosas", 124, 224, (
        "pedra preciosa", "diamante", "diamantifero", "diamantifera", "esmeralda", "turmalina",
        "gema", "gemas", "agata", "ametista", "topazio", "opala",
    )),
    Substance("Rochas Ornamentais", 125, 225, (
        "rocha ornamental", "granito", "marmore", "ardosia", "quartzito",
    )),
    Substance("Pedras Preciosas & Rochas Ornamentais", 123, 223, ()),
    Substance("Carvão mineral", 127, None, ("carvao", "linhito")),
    Substance("Urânio", 128, None, ("uranifero", "uranifera")),
    Substance("Gás natural e petróleo", 129, None, ("petroleo", "gas natural")),
    Substance("Energéticas", 126, None, ("xisto", "turfa")),
)


@dataclass(frozen=True)
class SubstanceMatch:
    """How one register name was read: the substance, and its class_id for a type (None: no class)."""

    name: str
    substance: str
    kind: Kind
    class_id: int | None


def _phrases() -> list[tuple[str, Substance]]:
    pairs = []
    for substance in SUBSTANCES:
        for alias in (substance.name, *substance.aliases):
            pairs.append((fold(alias), substance))
    return pairs


_PHRASES = _phrases()


def find_substance(name: str) -> Substance | None:
    """The substance a register's name means, None when no listed word or phrase is in it.

    Phrases match whole words. A phrase inside a longer matching one does not count
    (`areia` in `areia industrial`), and of what remains the first in the name wins:
    registers name the main substance first (`Ouro e Areia` is gold).
    """
    padded = f" {fold(name)} "
    spans = []  # (start, end, substance) of every phrase found, end exclusive
    for phrase, substance in _PHRASES:
        start = padded.find(f" {phrase} ")
        while phrase and start >= 0:
            spans.append((start, start + len(phrase) + 1, substance))
            start = padded.find(f" {phrase} ", start + 1)
    kept = [s for s in spans if not any(o[0] <= s[0] and s[1] <= o[1] and o[1] - o[0] > s[1] - s[0] for o in spans)]
    return min(kept, key=lambda s: s[0])[2] if kept else None


def match_substance(name: str, kind: Kind) -> SubstanceMatch | None:
    """The Table 3 reading of a register's substance name for a mine of type `kind`."""
    substance = find_substance(name)
    if substance is None:
        return None
    class_id = substance.industrial if kind == "industrial" else substance.garimpo
    return SubstanceMatch(name=name, substance=substance.name, kind=kind, class_id=class_id)


def class_id_for(name: str, kind: Kind) -> int | None:
    """The `class_id` of a substance name and type; None when Table 3 has none for them."""
    match = match_substance(name, kind)
    return None if match is None else match.class_id


def kind_of(text: str) -> Kind | None:
    """A register's type word as `garimpo` or `industrial` (`Garimpo`, `Mina`, `Industrial`, ...)."""
    folded = fold(text)
    if not folded:
        return None
    if "garimp" in folded:
        return "garimpo"
    if any(word in folded.split() for word in ("industrial", "mina", "lavra", "mineracao", "empresa")):
        return "industrial"
    return None
