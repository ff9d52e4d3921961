"""The CI rollout: the workflow file is valid, and its steps, run as written, roll a model out to
dev and prod on an emulated bucket, and stop at the gate when the retrained model is worse.

The steps that install things (`actions/*`, `make install`) are not run here: this
environment already has minescan; the steps that do the rollout are run verbatim with bash.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from minescan import storage
from minescan.errors import EXIT_BAD_MODEL
from minescan.registry import store as reg

from tests.helpers import REPO

WORKFLOW = REPO / ".github" / "workflows" / "rollout.yml"
RULES = "rules:\n  - {metric: recall, min_delta: -0.01}\n  - {metric: accuracy, min: 0.0}\n"


def load_workflow() -> dict:
    doc = yaml.safe_load(WORKFLOW.read_text())
    doc["on"] = doc.pop(True)  # YAML 1.1 reads the key `on` as true; GitHub reads it as "on"
    return doc


def rollout_steps(job: dict) -> list[dict]:
    return [s for s in job["steps"] if "scripts/rollout.sh" in s.get("run", "")]


def expand(text: str, values: dict[str, str]) -> str:
    """Replace each ${{ expression }} with the test's value for it (unknown ones fail)."""
    def one(match: re.Match) -> str:
        expression = match.group(1).strip()
        assert expression in values, f"the test gives no value for ${{{{ {expression} }}}}"
        return values[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def run_step(step: dict, workflow: dict, values: dict[str, str], env: dict[str, str]) -> subprocess.CompletedProcess:
    step_env = {**workflow.get("env", {}), **step.get("env", {})}
    full_env = {**env, **{k: expand(str(v), values) for k, v in step_env.items()}}
    return subprocess.run(["bash", "-ec", step["run"]], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=600)


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_the_workflow_validates_against_the_github_workflow_schema(tmp_path):
    check = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows"]
    ok = subprocess.run([*check, str(WORKFLOW)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:", 1))
    assert subprocess.run([*check, str(broken)], capture_output=True).returncode != 0


def test_the_workflow_promotes_to_prod_only_after_the_approval_environment():
    workflow = load_workflow()
    assert {"push", "workflow_dispatch"} <= set(workflow["on"])
    assert workflow["on"]["push"]["tags"] and "config" in workflow["on"]["workflow_dispatch"]["inputs"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    candidate, prod = workflow["jobs"]["candidate"], workflow["jobs"]["prod"]
    assert prod["needs"] == "candidate" and prod["environment"] == "production"
    assert set(candidate["outputs"]) == {"discovery", "impact"}
    assert [s["run"].split()[:2] for s in rollout_steps(candidate)] == [["scripts/rollout.sh", "candidate"]]
    assert [s["run"].split()[:2] for s in rollout_steps(prod)] == [["scripts/rollout.sh", "release"]]
    # every command the workflow runs exists here: make targets and scripts
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for target in re.findall(r"\bmake ([\w-]+)", step.get("run", "")):
                assert target in targets, target
            for script in re.findall(r"\b(scripts/[\w./-]+)", step.get("run", "")):
                assert os.access(REPO / script, os.X_OK), script
    # every `minescan` verb the script runs exists
    verbs = set(re.findall(r'"\$\{MS\[@\]\}" (\w+(?: [a-z]+)?)', (REPO / "scripts" / "rollout.sh").read_text()))
    assert {"train", "models publish", "models gate", "models promote"} <= verbs
    for verb in verbs:
        assert cli_command(verb.split()) is not None, verb


def cli_command(words: list[str]):
    """The click command `minescan WORDS...` names, or None."""
    import click
    from minescan.cli.main import cli

    command, ctx = cli, click.Context(cli)
    for word in words:
        if not isinstance(command, click.Group):
            break
        command = command.get_command(ctx, word)
        if command is None:
            return None
    return command


@pytest.fixture()
def pipeline_env(tmp_path, gcs_emulator):
    bucket = gcs_emulator.make_bucket()
    env = {**os.environ, "PYTHONPATH": str(REPO / "job"), "MINESCAN": f"{sys.executable} -m minescan",
           "GITHUB_OUTPUT": str(tmp_path / "github_output"), "GITHUB_ACTOR": "octo-reviewer",
           "ROLLOUT_STATE": str(tmp_path / "state" / "versions.env")}
    rules = tmp_path / "gate.yaml"
    rules.write_text(RULES)
    return bucket, env, rules


def write_config(path: Path, **values: str) -> Path:
    path.write_text("# test rollout\n" + "".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_the_workflow_steps_roll_a_model_out_to_dev_then_prod(tmp_path, pipeline_env, eval_set):
    from minescan.models.bundled import DEMO_MODELS

    bucket, env, rules = pipeline_env
    registry = f"{bucket}/registry"
    config = write_config(tmp_path / "rollout.env", REGISTRY=registry, EVAL=str(eval_set), RULES=str(rules),
                          KINDS="impact", CANDIDATE_IMPACT=str(DEMO_MODELS / "impact"))
    workflow = load_workflow()
    values = {"inputs.config || 'configs/rollout.env'": str(config), "github.run_id": "4242"}

    (step,) = rollout_steps(workflow["jobs"]["candidate"])
    done = run_step(step, workflow, values, env)
    assert done.returncode == 0, done.stdout + done.stderr
    version = outputs(Path(env["GITHUB_OUTPUT"]))["impact"]
    dev = reg.read_channel(registry, "dev")[0]
    assert (dev.impact, dev.by, dev.note, dev.forced) == (version, "octo-reviewer", "rollout 4242", [])
    assert reg.read_channel(registry, "prod") == (None, 0), "prod moves only in the approved job"

    values.update({f"needs.candidate.outputs.{kind}": outputs(Path(env["GITHUB_OUTPUT"])).get(kind, "")
                   for kind in ("discovery", "impact")})
    (step,) = rollout_steps(workflow["jobs"]["prod"])
    done = run_step(step, workflow, values, env)
    assert done.returncode == 0, done.stdout + done.stderr
    prod = reg.read_channel(registry, "prod")[0]
    assert prod.impact == version and prod.gates["impact"].startswith(reg.version_uri(registry, version))
    assert [r["channel"] for _, r in reg.gate_reports(registry, version)] == ["prod", "dev"]


@pytest.mark.slow  # trains a network and imports TensorFlow in two processes: about a minute
def test_a_worse_retrained_model_stops_at_the_gate_and_dev_stays(tmp_path, pipeline_env, eval_set):
    from minescan.models.bundled import DEMO_MODELS
    from minescan.synth.chips import write_chip_set

    bucket, env, rules = pipeline_env
    registry = f"{bucket}/registry"
    good = reg.publish(registry, str(DEMO_MODELS / "impact")).version
    reg.promote(registry, "dev", {"impact": good}, force=True)
    before = storage.read_with_generation(reg.channel_uri(registry, "dev"))
    chips = tmp_path / "train"
    write_chip_set(chips, n=30, seed=5, kind="impact", scene_size=768, n_scenes=1)
    config = write_config(
        tmp_path / "rollout.env", REGISTRY=registry, EVAL=str(eval_set), RULES=str(rules), KINDS="impact",
        TRAIN_MODE="ci", TRAIN_IMPACT_DATA=str(chips), CANDIDATES=f"{bucket}/candidates",
        TRAIN_ARGS="--epochs 1 --folds 0 --batch-size 8 --max-steps 2",
    )
    workflow = load_workflow()
    (step,) = rollout_steps(workflow["jobs"]["candidate"])
    values = {"inputs.config || 'configs/rollout.env'": str(config), "github.run_id": "77"}
    done = run_step(step, workflow, values, env)
    assert done.returncode == EXIT_BAD_MODEL, done.stdout + done.stderr
    assert "rejected against dev" in done.stderr
    trained = outputs(Path(env["GITHUB_OUTPUT"]))["impact"]
    assert storage.exists(storage.join(bucket, "candidates", "impact-77", "model.json"))
    assert reg.get_version(registry, trained).card.version == "77"
    assert storage.read_with_generation(reg.channel_uri(registry, "dev")) == before
    ((_, report),) = reg.gate_reports(registry, trained)
    assert report["passed"] is False and report["baseline"] == good


def test_the_script_refuses_a_config_it_does_not_understand(tmp_path):
    config = write_config(tmp_path / "rollout.env", REGISTRY="r", EVAL="e", RULES="g", REGSITRY="typo")
    done = subprocess.run(["bash", str(REPO / "scripts" / "rollout.sh"), "candidate", str(config)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "unknown key REGSITRY" in done.stderr
