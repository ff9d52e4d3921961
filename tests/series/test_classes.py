"""Table 3's class ids and the substance names registers use."""

from __future__ import annotations

from collections import Counter

import pytest
from minescan.series.classes import (
    CLASS_IDS,
    CLASSES,
    TABLE_3,
    class_id_for,
    find_substance,
    kind_of,
)


def test_table_3_has_the_atbds_ids_and_labels():
    assert CLASS_IDS == (*range(101, 131), 214, 215, 216, 217, 223, 224, 225)
    assert len(TABLE_3) == 37
    assert CLASSES[106].level_3 == "2.2.05 Molibidênio"
    assert CLASSES[130].level_3 == "2.2.30 Zinco" and CLASSES[130].level_2 == "2.2 Metálicas"
    assert (CLASSES[215].level_1, CLASSES[215].level_3) == ("1. Garimpo", "1.1.01 Ouro")
    assert CLASSES[129].level_2 == "2.1 Energéticas"
    assert [c.kind for c in TABLE_3].count("garimpo") == 7


@pytest.mark.parametrize(
    ("name", "kind", "class_id"),
    [
        ("Minério de Ferro", "industrial", 102),
        ("MINERIO DE FERRO", "industrial", 102),
        ("Itabirito", "industrial", 102),
        ("Minério de Ouro Primário", "industrial", 115),
        ("ouro", "garimpo", 215),
        ("Aluvião Estanífero", "garimpo", 214),
        ("Cassiterita", "industrial", 114),
        ("Minério de Zinco", "industrial", 130),
        ("Areia", "industrial", 117),
        ("Areia", "garimpo", 217),
        ("Areia Industrial", "industrial", 121),  # the longer phrase wins over `areia`
        ("Ouro e Areia", "garimpo", 215),  # the first substance named wins
        ("Caulim", "garimpo", 216),  # garimpo of another non-metal: the group's class
        ("Minério de Vanádio", "industrial", 101),  # a metal without its own class
        ("Rocha Diamantífera", "garimpo", 224),
        ("Granito", "industrial", 125),
        ("Carvão Mineral Camada Bonito", "industrial", 127),
        ("Minério de Ferro", "garimpo", None),  # Table 3 has no iron garimpo
        ("Sedimento", "industrial", None),
        ("", "industrial", None),
    ],
)
def test_substance_names_map_to_table_3(name, kind, class_id):
    assert class_id_for(name, kind) == class_id


def test_kind_words():
    assert kind_of("Garimpo") == "garimpo" and kind_of("GARIMPEIRA") == "garimpo"
    assert kind_of("Mina") == "industrial" and kind_of("Industrial") == "industrial"
    assert kind_of("Depósito") is None and kind_of("") is None


def test_the_anm_registers_substances_nearly_all_have_a_class(shared_dir):
    from minescan.points import read_points

    names = Counter(p.ore for p in read_points(shared_dir / "data" / "anm_barragens_mineracao_2019.tsv"))
    unknown = {name for name in names if find_substance(name) is None}
    assert unknown == {"Sedimento", "Pegmatito", "Silvanita", "Filito", "Arenito", "Serpentinito"}
    assert sum(names[n] for n in unknown) == 40 and sum(names.values()) == 769
