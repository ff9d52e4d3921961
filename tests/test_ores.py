"""Ore name → impact class: the paper's table, on Portuguese names and the real ANM register."""

from __future__ import annotations

import csv
import json

import pytest
from minescan.errors import InputError
from minescan.ores import (
    OreMapping,
    classify_ore,
    classify_ores,
    fold,
    load_ore_mapping,
)

from tests.helpers import SHARED

ANM = SHARED / "data" / "anm_barragens_mineracao_2019.tsv"


@pytest.mark.parametrize(
    ("name", "impact"),
    [
        ("Minério de Ferro", "high"),
        ("MINERIO DE FERRO", "high"),
        ("minerio de niquel", "high"),
        ("Bauxita Grau Não Metalúrgico", "high"),
        ("Rocha Fosfática", "high"),
        ("Xisto", "high"),
        ("Areia", "low"),
        ("Areia e Cascalho", "low"),
        ("Argila Arenosa", "low"),
        ("pedra britada", "low"),
        ("Solo", "no_ore"),
        ("vegetação", "no_ore"),
        ("copper", "high"),
    ],
)
def test_paper_classes_match_portuguese_and_english_names(name, impact):
    assert classify_ore(name).impact == impact


def test_gold_defaults_to_high_and_is_configurable():
    assert classify_ore("Minério de Ouro Primário").impact == "high"
    assert classify_ore("Aluvião Aurífero").ores == ("gold",)
    low_gold = OreMapping(gold_impact="low")
    assert classify_ore("Rocha Aurífera", low_gold).impact == "low"


def test_mixed_names_take_the_highest_impact():
    match = classify_ore("Ouro e Areia", OreMapping(gold_impact="high"))
    assert match.ores == ("gold", "sand") and match.impact == "high"


def test_no_ore_words_do_not_match_as_qualifiers():
    # "Rocha Carbonática" is a mined substance, not bare rock: it must be reported unknown.
    assert classify_ore("Rocha Carbonática") is None
    assert classify_ore("rocha").impact == "no_ore"


def test_unknown_names_are_reported_with_counts():
    report = classify_ores(["Areia", "Carvão Mineral", "Carvão Mineral", "Minério de Ferro", ""])
    assert report.unknown == {"Carvão Mineral": 2, "": 1}
    assert report.counts == {"high": 1, "low": 1, "no_ore": 0}


def test_fold_strips_accents_case_and_punctuation():
    assert fold("Minério de Níquel-Grau  Ú") == "minerio de niquel grau u"


def test_mapping_file_replaces_the_table_and_flag_overrides_gold(tmp_path):
    path = tmp_path / "ores.json"
    path.write_text(json.dumps({"ores": {"tin": {"impact": "high", "aliases": ["estanho"]}}}))
    mapping = load_ore_mapping(path, gold_impact="low")
    assert classify_ore("Minério de Estanho Primário", mapping).impact == "high"
    assert classify_ore("Areia", mapping) is None
    assert mapping.gold_impact == "low"


def test_bad_mapping_file_is_an_input_error(tmp_path):
    path = tmp_path / "ores.json"
    path.write_text(json.dumps({"ores": {"tin": {"impact": "medium", "aliases": ["x"]}}}))
    with pytest.raises(InputError, match="ores.json"):
        load_ore_mapping(path)


@pytest.mark.skipif(not ANM.exists(), reason="../shared/data is not present")
def test_every_ore_name_in_the_real_anm_register_is_classified_or_reported():
    with ANM.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    names = [row["MINÉRIO PRINCIPAL"] for row in rows]
    report = classify_ores(names)
    assert sum(report.counts.values()) + sum(report.unknown.values()) == len(rows) == 769
    distinct = {n.strip() for n in names}
    assert set(report.matches) | set(report.unknown) == distinct
    assert report.matches["Minério de Ferro"].impact == "high"
    assert report.matches["Areia"].impact == "low"
    assert report.matches["Argila"].impact == "low"
    assert report.matches["Minério de Ouro Primário"].impact == "high"
    assert report.matches["Bauxita Grau Metalúrgico"].impact == "high"
    # Ores the paper never classified are reported, not guessed.
    assert "Carvão Mineral" in report.unknown and "Minério de Estanho Primário" in report.unknown
    # Most of the register is iron, clay, sand and gold: the table covers the bulk of it.
    assert sum(report.counts.values()) > 0.75 * len(rows)
    assert report.counts["no_ore"] == 0
