"""A model rollout end to end on an emulated bucket: publish, gate, promote, race, roll back,
and a run that follows the channel while the channel moves under it."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from minescan import storage
from minescan.errors import EXIT_BAD_MODEL, ConflictError
from minescan.registry import store as reg

from tests.helpers import random_scene, run_cli, write_scene

EXIT_OK = 0
RULES = "rules:\n  - {metric: recall, min_delta: -0.01}\n  - {metric: precision, min: 0.5}\n"


def publish(registry, model_dir) -> str:
    return reg.publish(registry, str(model_dir)).version


def channel_state(registry, channel="prod"):
    """The pointer's bytes and generation: 'unchanged' means both are equal."""
    return storage.read_with_generation(reg.channel_uri(registry, channel))


def write_manifest(tmp_path, n=2):
    from affine import Affine
    from minescan.bands import PIXEL_DEG as PX

    paths = [write_scene(tmp_path / f"s{k}.tif", random_scene(np.random.default_rng(k), 230, 240),
                         transform=Affine(PX, 0, -44.0 + k * 27 * 8 * PX, 0, -PX, -20.0))
             for k in range(n)]
    manifest = tmp_path / "scenes.txt"
    manifest.write_text("".join(f"{p}\n" for p in paths))
    return str(manifest)


def test_gate_rejects_worse_promotes_better_one_race_wins_rollback_and_a_run_keeps_its_models(
    tmp_path, gcs_emulator, impact_models, eval_set, monkeypatch
):
    from minescan.batch.commit import read_committed
    from minescan.batch.layout import RunLayout
    from minescan.batch.runner import map_scene, read_run
    from minescan.models.bundled import DEMO_MODELS
    from minescan.scan.config import ScanConfig

    registry = gcs_emulator.make_bucket() + "/registry"
    rules = tmp_path / "gate.yaml"
    rules.write_text(RULES)
    disc = publish(registry, DEMO_MODELS / "discovery")
    mid, bad, good = (publish(registry, impact_models[k]) for k in ("mid", "bad", "good"))
    assert len({disc, mid, bad, good}) == 4

    # bootstrap: the first pointer has nothing to be gated against, so it is forced (and says so)
    assert run_cli(["models", "promote", "--registry", registry, "--channel", "prod",
                    "--discovery", disc, "--impact", mid, "--force"]) == EXIT_OK
    first = reg.read_channel(registry, "prod")[0]
    assert (first.seq, first.impact, sorted(first.forced)) == (1, mid, ["discovery", "impact"])

    # a worse candidate is rejected, with a report, and the channel does not move
    before = channel_state(registry)
    gate = ["models", "gate", "--registry", registry, "--channel", "prod", "--eval", str(eval_set),
            "--rules", str(rules)]
    assert run_cli([*gate, "--candidate", bad]) == EXIT_BAD_MODEL
    assert channel_state(registry) == before
    ((_, report),) = reg.gate_reports(registry, bad)
    assert report["passed"] is False and report["baseline"] == mid
    recall = next(o for o in report["outcomes"] if o["metric"] == "recall")
    assert recall["candidate"] < recall["current"] - 0.01 and not recall["passed"]
    # ...and promote refuses it, ungated, without --force
    with pytest.raises(ConflictError, match="no passing gate"):
        reg.promote(registry, "prod", {"impact": bad})
    assert channel_state(registry) == before

    # a better one passes the same gate on the same pinned set and is promoted
    assert run_cli([*gate, "--candidate", good]) == EXIT_OK
    ((_, passed),) = reg.gate_reports(registry, good)
    assert passed["passed"] and passed["eval"]["sha256"] == report["eval"]["sha256"]
    assert passed["metrics"]["candidate"]["recall"] > passed["metrics"]["current"]["recall"]
    assert run_cli(["models", "promote", "--registry", registry, "--channel", "prod",
                    "--impact", good]) == EXIT_OK
    second = reg.read_channel(registry, "prod")[0]
    assert (second.seq, second.impact, second.forced, second.previous) == (2, good, [], 1)
    assert second.gates["impact"].startswith(reg.version_uri(registry, good))

    # two promotions that read the same pointer: exactly one moves the channel
    swap = storage.replace_if_generation
    both_read = threading.Barrier(2, timeout=60)

    def swap_after_both_read(uri, data, generation):
        both_read.wait()
        return swap(uri, data, generation)

    monkeypatch.setattr(storage, "replace_if_generation", swap_after_both_read)
    outcomes: dict[str, object] = {}

    def promote(name):
        try:
            outcomes[name] = reg.promote(registry, "prod", {"impact": name}, force=True, note="race")[0]
        except ConflictError as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=promote, args=(name,)) for name in (mid, bad)]
    [t.start() for t in threads]
    [t.join(timeout=120) for t in threads]
    monkeypatch.setattr(storage, "replace_if_generation", swap)
    winners = [n for n, o in outcomes.items() if isinstance(o, reg.ChannelPointer)]
    losers = [n for n, o in outcomes.items() if isinstance(o, ConflictError)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    third = reg.read_channel(registry, "prod")[0]
    assert (third.seq, third.impact, third.forced) == (3, winners[0], ["impact"])

    # rollback returns to the gated pointer; the history keeps every pointer, and no loser
    assert run_cli(["models", "rollback", "--registry", registry, "--channel", "prod"]) == EXIT_OK
    fourth = reg.read_channel(registry, "prod")[0]
    assert (fourth.seq, fourth.action, fourth.restores, fourth.impact) == (4, "rollback", 2, good)
    history = reg.read_history(registry, "prod")
    assert [(h.seq, h.action, h.impact) for h in history] == [
        (1, "promote", mid), (2, "promote", good), (3, "promote", winners[0]), (4, "rollback", good)]
    assert storage.list_dir(reg.history_uri(registry, "prod")) == [f"{i:08d}.json" for i in range(1, 5)]

    # a run that follows prod: pinned at its first scene, unmoved by a promotion mid-run
    manifest = write_manifest(tmp_path)
    follow = ScanConfig(registry=registry, channel="prod")
    run = registry.replace("/registry", "/runs/r1")
    assert map_scene(manifest, run, 0, config=follow).status == "committed"
    pinned = read_run(run)
    assert pinned["models"]["impact"]["sha256"] == reg.get_version(registry, good).card.weights_sha256
    assert f"/versions/{good}" in pinned["models"]["impact"]["path"]
    reg.promote(registry, "prod", {"impact": mid}, force=True, note="mid-run")
    assert reg.read_channel(registry, "prod")[0].impact == mid
    assert map_scene(manifest, run, 1, config=follow).status == "committed"
    assert read_run(run) == pinned
    shards = [read_committed(RunLayout(run).shard(s).root).record for s in ("s0", "s1")]
    assert shards[0]["model_version"] == shards[1]["model_version"]
    assert shards[0]["config"]["impact_model"] == shards[1]["config"]["impact_model"] == pinned["models"]["impact"]["path"]
    channel_pin = json.loads(storage.read_text(RunLayout(run).channel_json))
    assert (channel_pin["seq"], channel_pin["impact"], channel_pin["discovery"]) == (4, good, disc)

    # the next run picks up the new version
    run2 = registry.replace("/registry", "/runs/r2")
    map_scene(manifest, run2, 0, config=follow)
    assert f"/versions/{mid}" in read_run(run2)["models"]["impact"]["path"]
