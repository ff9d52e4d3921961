"""The registry's contracts one by one, through the CLI: names, immutability, verification,
gate rules, channels, runs that follow a channel, and clear errors for bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from minescan import storage
from minescan.batch import commit
from minescan.errors import EXIT_BAD_INPUT, EXIT_BAD_MODEL, EXIT_CONFLICT
from minescan.models.bundled import DEMO_MODELS
from minescan.registry import store as reg
from minescan.registry.gate import GateRules, check_rules

from tests.helpers import error_lines, run_cli

EXIT_OK = 0
ABSENT = "impact-0000000000000000"


@pytest.fixture()
def registry(tmp_path):
    return str(tmp_path / "registry")


@pytest.fixture()
def rules(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("rules:\n  - {metric: recall, min_delta: -0.01}\n")
    return path


def one_error_line(capsys) -> str:
    (line,) = error_lines(capsys.readouterr().err)
    return line


def test_a_version_is_named_by_its_card_and_published_once(registry, tmp_path, capsys):
    source = tmp_path / "impact"
    shutil.copytree(DEMO_MODELS / "impact", source)
    assert run_cli(["models", "publish", source, "--registry", registry]) == EXIT_OK
    name = capsys.readouterr().out.split()[0]
    assert name == reg.version_name(reg.read_model_card(source))
    assert run_cli(["models", "publish", source, "--registry", registry]) == EXIT_OK
    assert capsys.readouterr().out.split()[:2] == [name, "exists"]
    record = reg.get_version(registry, name).record
    assert record.files == storage.hash_tree(source) and record.kind == "impact"

    # same card, other files: the stored version is never overwritten
    (source / "report" / "cv.md").write_text("edited\n")
    assert run_cli(["models", "publish", source, "--registry", registry]) == EXIT_CONFLICT
    assert "never overwritten" in one_error_line(capsys)
    assert reg.get_version(registry, name).record.files == record.files


def test_list_shows_kind_bands_training_data_evaluation_and_channels(registry, capsys):
    disc = reg.publish(registry, str(DEMO_MODELS / "discovery")).version
    reg.promote(registry, "dev", {"discovery": disc}, force=True)
    assert run_cli(["models", "list", "--registry", registry, "--json"]) == EXIT_OK
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["version"] == disc and row["kind"] == "discovery" and row["channels"] == ["dev"]
    assert len(row["bands"]) == 12 and row["training"]["n_chips"] == 1000
    assert row["training"]["counts"] == {"mine": 500, "not_mine": 500}
    assert row["evaluation"] == {"cv": {}, "gates": {}}
    assert run_cli(["models", "list", "--registry", registry]) == EXIT_OK
    text = capsys.readouterr().out
    assert disc in text and "[dev]" in text and "1000 chips" in text


def test_a_corrupted_registry_object_is_exit_4_and_the_channel_is_untouched(registry, rules, tmp_path, capsys):
    name = reg.publish(registry, str(DEMO_MODELS / "impact")).version
    other = reg.publish(registry, str(DEMO_MODELS / "discovery")).version
    reg.promote(registry, "prod", {"discovery": other}, force=True)
    before = storage.read_with_generation(reg.channel_uri(registry, "prod"))
    weights = tmp_path / "registry" / "versions" / name / "model.keras"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    assert run_cli(["models", "promote", "--registry", registry, "--channel", "prod",
                    "--impact", name, "--force"]) == EXIT_BAD_MODEL
    line = one_error_line(capsys)
    assert "model.keras" in line and "corrupted" in line
    assert run_cli(["models", "gate", "--registry", registry, "--channel", "prod", "--candidate", name,
                    "--eval", str(tmp_path), "--rules", rules]) == EXIT_BAD_MODEL
    assert "corrupted" in one_error_line(capsys)
    assert storage.read_with_generation(reg.channel_uri(registry, "prod")) == before
    assert reg.gate_reports(registry, name) == []


def test_a_corrupted_object_in_the_bucket_is_caught_when_read(gcs_emulator, capsys):
    registry = gcs_emulator.make_bucket() + "/registry"
    name = reg.publish(registry, str(DEMO_MODELS / "impact")).version
    data_uri = reg.get_version(registry, name).data_uri
    storage.write_bytes(storage.join(data_uri, "report", "cv.md"), b"tampered")
    assert run_cli(["models", "promote", "--registry", registry, "--channel", "prod",
                    "--impact", name, "--force"]) == EXIT_BAD_MODEL
    assert "report/cv.md" in one_error_line(capsys)
    assert reg.read_channel(registry, "prod") == (None, 0)


@pytest.mark.parametrize("argv, message", [
    (["promote", "--channel", "prod", "--impact", ABSENT], f"version {ABSENT} does not exist"),
    (["promote", "--channel", "prod", "--impact", "latest"], "not a version name"),
    (["promote", "--channel", "Prod!", "--impact", ABSENT], "not a channel name"),
    (["promote", "--channel", "prod"], "nothing to promote"),
    (["promote", "--channel", "prod", "--discovery", ABSENT], "is not a discovery version"),
    (["rollback", "--channel", "prod"], "does not exist"),
])
def test_bad_names_and_missing_versions_are_one_line_exit_3(registry, argv, message, capsys):
    assert run_cli(["models", *argv, "--registry", registry]) == EXIT_BAD_INPUT
    assert message in one_error_line(capsys)
    assert reg.read_channel(registry, "prod") == (None, 0)


@pytest.mark.parametrize("text, message", [
    ("rules:\n  - {metric: recal, min: 0.5}\n", "unknown metric 'recal'"),
    ("rules:\n  - {metric: recall}\n", "needs min or min_delta"),
    ("rules:\n  - {metric: recall, min: 0.5, max: 1}\n", "Extra inputs are not permitted"),
    ("rules: []\n", "at least 1"),
    ("rules: [\n", "cannot parse"),
])
def test_bad_gate_rules_fail_before_any_work_and_leave_the_channel(registry, tmp_path, text, message, capsys):
    name = reg.publish(registry, str(DEMO_MODELS / "impact")).version
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    assert run_cli(["models", "gate", "--registry", registry, "--channel", "prod", "--candidate", name,
                    "--eval", str(tmp_path), "--rules", path]) == EXIT_BAD_INPUT
    assert message in one_error_line(capsys)
    assert reg.gate_reports(registry, name) == [] and reg.read_channel(registry, "prod") == (None, 0)


def test_an_eval_set_without_the_models_bands_is_a_clear_error(registry, rules, tmp_path, capsys):
    from tests.training.test_cli import make_chips

    name = reg.publish(registry, str(DEMO_MODELS / "impact")).version
    make_chips(tmp_path / "eval", 21, ("high", "low", "no_ore"), 2)  # three bands, the model has twelve
    assert run_cli(["models", "gate", "--registry", registry, "--channel", "prod", "--candidate", name,
                    "--eval", tmp_path / "eval", "--rules", rules]) == EXIT_BAD_INPUT
    line = one_error_line(capsys)
    assert "does not fit" in line and name in line and "B1,B2" in line
    assert reg.gate_reports(registry, name) == []


def test_rules_compare_with_the_current_version_and_require_finite_metrics():
    rules = GateRules.model_validate({"rules": [{"metric": "recall", "min_delta": -0.01},
                                                {"metric": "precision", "min": 0.8, "kind": "impact"}]})
    good = {"accuracy": 0.9, "f1": 0.9, "precision": 0.85, "recall": 0.895, "roc_auc": 0.95, "kappa": 0.8}
    current = {**good, "recall": 0.905}
    assert all(o.passed for o in check_rules(rules, "impact", good, current))
    worse = check_rules(rules, "impact", {**good, "recall": 0.89}, current)
    assert [o.passed for o in worse] == [True, False, True]
    assert len(check_rules(rules, "discovery", good, current)) == 2, "the impact-only rule does not apply"
    nan = check_rules(rules, "impact", {**good, "roc_auc": float("nan")}, current)
    assert not nan[0].passed and "roc_auc" in nan[0].note
    first = check_rules(rules, "impact", good, None)
    assert all(o.passed for o in first) and "no current version" in first[1].note


def test_promote_needs_a_gate_against_the_current_version_and_force_is_recorded(registry, capsys):
    disc = reg.publish(registry, str(DEMO_MODELS / "discovery")).version
    imp = reg.publish(registry, str(DEMO_MODELS / "impact")).version
    assert run_cli(["models", "promote", "--registry", registry, "--channel", "prod", "--impact", imp]) == EXIT_CONFLICT
    assert "no passing gate" in one_error_line(capsys)
    assert reg.read_channel(registry, "prod") == (None, 0)
    assert run_cli(["models", "promote", "--registry", registry, "--channel", "prod", "--impact", imp,
                    "--discovery", disc, "--force", "--note", "bootstrap", "--by", "ci"]) == EXIT_OK
    # promoting what the channel already holds changes nothing (a re-run CI job is harmless)
    assert run_cli(["models", "promote", "--registry", registry, "--channel", "prod", "--impact", imp]) == EXIT_OK
    assert "unchanged" in capsys.readouterr().out
    assert run_cli(["models", "history", "--registry", registry, "--channel", "prod"]) == EXIT_OK
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("#1 ") and " ci promote FORCED discovery,impact" in line and "bootstrap" in line
    assert run_cli(["models", "rollback", "--registry", registry, "--channel", "prod"]) == EXIT_BAD_INPUT
    assert "nothing to roll back to" in one_error_line(capsys)


def test_history_is_complete_even_if_a_writer_died_before_recording(registry):
    imp = reg.publish(registry, str(DEMO_MODELS / "impact")).version
    disc = reg.publish(registry, str(DEMO_MODELS / "discovery")).version
    reg.promote(registry, "prod", {"impact": imp}, force=True)
    storage.rm_tree(reg.history_uri(registry, "prod", 1))  # as if the writer crashed after the swap
    assert [h.seq for h in reg.read_history(registry, "prod")] == [1]
    reg.promote(registry, "prod", {"discovery": disc}, force=True)
    assert storage.list_dir(reg.history_uri(registry, "prod")) == ["00000001.json", "00000002.json"]
    assert storage.create_only(reg.history_uri(registry, "prod", 1), b"rewritten") is False


@pytest.mark.parametrize("config, message", [
    ({"registry": "r"}, "registry and channel go together"),
    ({"registry": "r", "channel": "prod", "impact_model": "m"}, "names no model directories"),
])
def test_a_run_config_follows_a_channel_or_names_models_not_both(config, message):
    from minescan.scan.config import ScanConfig

    with pytest.raises(ValueError, match=message):
        ScanConfig.model_validate(config)


def test_mapping_from_a_channel_that_does_not_exist_is_exit_3(registry, tmp_path, capsys):
    from tests.registry.test_rollout import write_manifest

    manifest = write_manifest(tmp_path, n=1)
    assert run_cli(["map", "--manifest", manifest, "--run", tmp_path / "run", "--index", "0",
                    "--registry", registry, "--channel", "prod"]) == EXIT_BAD_INPUT
    assert "channel prod does not exist" in one_error_line(capsys)
    assert not (tmp_path / "run" / "channel.json").exists()


def test_train_publish_puts_the_trained_model_in_the_registry(registry, tmp_path, capsys):
    from tests.training.test_cli import BANDS, make_chips

    chips = make_chips(tmp_path / "chips", 21, ("high", "low", "no_ore"), 4)
    out = tmp_path / "candidate"
    assert run_cli(["train", "impact", "--data", chips, "--out", out, "--bands", BANDS, "--folds", "0",
                    "--epochs", "1", "--batch-size", "4", "--max-steps", "1", "--publish", registry]) == EXIT_OK
    version = capsys.readouterr().out.splitlines()[-1].split()[0]
    published = reg.get_version(registry, version)
    assert published.record.source == str(out) and published.card.bands == BANDS.split(",")
    assert published.record.files == storage.hash_tree(out)


def test_a_single_scan_can_follow_a_channel_too(registry, tmp_path, capsys):
    from tests.registry.test_rollout import write_manifest

    imp = reg.publish(registry, str(DEMO_MODELS / "impact")).version
    disc = reg.publish(registry, str(DEMO_MODELS / "discovery")).version
    reg.promote(registry, "prod", {"discovery": disc, "impact": imp}, force=True)
    scene = Path(write_manifest(tmp_path, n=1)).read_text().split()[0]
    assert run_cli(["scan", scene, "--out", tmp_path / "shard", "--registry", registry,
                    "--channel", "prod"]) == EXIT_OK
    config = commit.read_committed(str(tmp_path / "shard")).record["config"]
    assert config["impact_model"] == reg.get_version(registry, imp).data_uri
    assert config["discovery_model"] == reg.get_version(registry, disc).data_uri
