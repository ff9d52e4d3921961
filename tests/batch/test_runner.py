"""The batch job: map one scene per index, skip committed work, survive kills, reduce."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from minescan import storage
from minescan.bands import PIXEL_DEG as PX  # noqa: E402
from minescan.batch import commit
from minescan.batch.layout import RunLayout
from minescan.batch.runner import map_scene, reduce_run
from minescan.errors import EXIT_BAD_INPUT, EXIT_CONFLICT, ConflictError, InputError

from tests.helpers import random_scene, run_cli, write_scene


@pytest.fixture()
def two_scenes(tmp_path):
    """Two small scenes side by side on one grid, and a plain-text manifest."""
    from affine import Affine

    paths = []
    for k in range(2):
        transform = Affine(PX, 0, -44.0 + k * 27 * 8 * PX, 0, -PX, -20.0)
        paths.append(write_scene(tmp_path / f"s{k}.tif", random_scene(np.random.default_rng(k), 230, 240),
                                 transform=transform))
    manifest = tmp_path / "scenes.txt"
    manifest.write_text("".join(f"{p}\n" for p in paths))
    return manifest, paths


def _models(tiny_models, **config):
    from minescan.scan.config import ScanConfig

    return {"config": ScanConfig(discovery_model=str(tiny_models / "discovery"),
                                 impact_model=str(tiny_models / "impact"), **config)}


def _files(run, scene_id):
    shard = commit.read_committed(RunLayout(run).shard(scene_id).root)
    assert shard is not None, scene_id
    return shard.record["files"], shard.record["counts"]


def test_map_then_reduce_writes_national_sites_and_remap_is_a_no_op(tmp_path, two_scenes, tiny_models):
    manifest, _ = two_scenes
    run = str(tmp_path / "run")
    outcomes = [map_scene(str(manifest), run, i, **_models(tiny_models)) for i in range(2)]
    assert [o.status for o in outcomes] == ["committed", "committed"]
    before = (tmp_path / "run" / "scenes" / "s0" / "_SUCCESS.json").read_bytes()
    assert map_scene(str(manifest), run, 0, **_models(tiny_models)).status == "skipped"
    assert (tmp_path / "run" / "scenes" / "s0" / "_SUCCESS.json").read_bytes() == before
    out = reduce_run(run)
    assert out.n_scenes == 2 and out.missing == ()
    national = tmp_path / "run" / "national"
    for name in ("sites.parquet", "sites.geojson", "sites.kml", "sites.csv", "map.html", "summary.md",
                 "detections.parquet", "summary.json"):
        assert (national / name).is_file(), name
    summary = json.loads((national / "summary.json").read_text())
    assert summary["scenes_reduced"] == 2 and summary["sites"] == out.n_sites > 0


def test_a_worker_with_another_config_or_model_refuses_the_run(tmp_path, two_scenes, tiny_models):
    from minescan.scan.config import ScanConfig

    manifest, _ = two_scenes
    run = str(tmp_path / "run")
    map_scene(str(manifest), run, 0, **_models(tiny_models))
    with pytest.raises(ConflictError, match="different config"):
        map_scene(str(manifest), run, 1, **_models(tiny_models, threshold=0.9))
    import keras
    from minescan.bands import DEFAULT_BANDS
    from minescan.models.card import Normalization, save_model_dir
    from minescan.models.networks import DISCOVERY_CLASSES, build_discovery_fcn

    keras.utils.set_random_seed(99)
    other = tmp_path / "other-discovery"
    save_model_dir(build_discovery_fcn(12), other, kind="discovery", name="other", version="2",
                   bands=DEFAULT_BANDS, normalization=Normalization(mean=[0.0] * 12, std=[1.0] * 12),
                   class_names=DISCOVERY_CLASSES, input_size=201, threshold=0.0)
    with pytest.raises(ConflictError, match="models.discovery.sha256"):
        map_scene(str(manifest), run, 1, config=ScanConfig(discovery_model=str(other),
                                                           impact_model=str(tiny_models / "impact")))


def test_index_comes_from_job_completion_index(tmp_path, two_scenes, tiny_models, monkeypatch, capsys):
    manifest, _ = two_scenes
    run = tmp_path / "run"
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    assert run_cli(["map", "--manifest", manifest, "--run", run,
                    "--discovery-model", tiny_models / "discovery", "--impact-model", tiny_models / "impact"]) == 0
    assert (run / "scenes" / "s1" / "_SUCCESS.json").is_file()
    assert not (run / "scenes" / "s0").exists()
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "7")
    assert run_cli(["map", "--manifest", manifest, "--run", run]) == EXIT_BAD_INPUT and "outside the manifest" in capsys.readouterr().err


def test_reduce_refuses_missing_shards_unless_allowed(tmp_path, two_scenes, tiny_models):
    manifest, _ = two_scenes
    run = str(tmp_path / "run")
    map_scene(str(manifest), run, 1, **_models(tiny_models))
    with pytest.raises(InputError, match=r"1 of 2 scenes have no committed shard \(index:id 0:s0\)"):
        reduce_run(run)
    out = reduce_run(run, allow_missing=True)
    assert out.missing == ("0:s0",) and out.n_scenes == 1


def test_reduce_of_something_that_is_not_a_run_exits_3(tmp_path, capsys):
    assert run_cli(["reduce", "--run", tmp_path]) == EXIT_BAD_INPUT and "not a minescan run" in capsys.readouterr().err


_BLOCK_BEFORE_COMMIT = """
import sys, time, pathlib
import minescan.storage as storage
real_write = storage.write_if_generation
def write_if_generation(uri, data, generation):
    if uri.endswith("/_SUCCESS.json"):  # the shard's data is uploaded; its marker is next
        pathlib.Path(sys.argv[1]).touch()
        time.sleep(600)
    return real_write(uri, data, generation)
storage.write_if_generation = write_if_generation
from minescan.cli import main
main(sys.argv[2:])
"""


def _map_process_blocking_before_commit(flag, manifest, run, index, tiny_models):
    """A map pod that stops right before its commit: the moment a kill does most harm."""
    return subprocess.Popen(
        [sys.executable, "-c", _BLOCK_BEFORE_COMMIT, str(flag), "--log-format", "json", "map",
         "--manifest", manifest, "--run", run, "--index", str(index),
         "--discovery-model", str(tiny_models / "discovery"), "--impact-model", str(tiny_models / "impact")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ),
    )


def test_killed_map_on_gcs_reruns_to_exactly_the_uninterrupted_shards(tmp_path, two_scenes, tiny_models, gcs_emulator):
    manifest_local, paths = two_scenes
    bucket = gcs_emulator.make_bucket()
    uris = []
    for p in paths:
        uri = storage.join(bucket, "scenes", p.name)
        storage.write_bytes(uri, p.read_bytes())
        uris.append(uri)
    manifest = storage.join(bucket, "scenes.txt")
    storage.write_text(manifest, "".join(f"{u}\n" for u in uris))
    clean, killed = storage.join(bucket, "clean"), storage.join(bucket, "killed")

    for i in range(2):
        map_scene(manifest, clean, i, **_models(tiny_models))

    # kill scene 1's pod after its data is uploaded but before its commit
    map_scene(manifest, killed, 0, **_models(tiny_models))
    flag = tmp_path / "about-to-commit"
    proc = _map_process_blocking_before_commit(flag, manifest, killed, 1, tiny_models)
    deadline = time.monotonic() + 180
    while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert flag.exists()
    assert storage.list_dir(storage.join(killed, "scenes", "s1", "attempts"))  # half a shard is there
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert commit.read_committed(RunLayout(killed).shard("s1").root) is None  # no marker: the shard does not exist

    # the re-run (as Kubernetes would retry the index) redoes it from scratch
    assert map_scene(manifest, killed, 1, **_models(tiny_models)).status == "committed"
    assert map_scene(manifest, killed, 0, **_models(tiny_models)).status == "skipped"
    for scene_id in ("s0", "s1"):
        (files_k, counts_k), (files_c, counts_c) = _files(killed, scene_id), _files(clean, scene_id)
        assert counts_k == counts_c
        assert {k for k in files_k if files_k[k] != files_c.get(k)} == set(), scene_id
        attempts = storage.list_dir(storage.join(killed, "scenes", scene_id, "attempts"))
        assert len(attempts) == 1  # the crashed attempt's objects are gone
    assert reduce_run(killed).n_sites == reduce_run(clean).n_sites


def test_models_load_from_cloud_storage(tmp_path, two_scenes, tiny_models, gcs_emulator):
    from minescan.scan.config import ScanConfig

    manifest, _ = two_scenes
    bucket = gcs_emulator.make_bucket()
    for kind in ("discovery", "impact"):
        storage.put_dir(tiny_models / kind, storage.join(bucket, "models", kind))
    remote = ScanConfig(discovery_model=storage.join(bucket, "models", "discovery"),
                        impact_model=storage.join(bucket, "models", "impact"))
    run = str(tmp_path / "run")
    assert map_scene(str(manifest), run, 0, config=remote).status == "committed"
    assert _files(run, "s0")[1]["detections"] > 0
    with pytest.raises(Exception, match="does not exist"):
        map_scene(str(manifest), str(tmp_path / "run2"), 0,
                  config=ScanConfig(discovery_model=storage.join(bucket, "models", "nope")))


def test_conflicting_map_exits_5(tmp_path, two_scenes, tiny_models, capsys):
    manifest, _ = two_scenes
    run = tmp_path / "run"
    args = ["map", "--manifest", str(manifest), "--run", str(run), "--index", "0",
            "--discovery-model", str(tiny_models / "discovery"), "--impact-model", str(tiny_models / "impact")]
    assert run_cli(args) == 0
    assert run_cli([*args, "--threshold", "0.5"]) == EXIT_CONFLICT
    assert "different config" in capsys.readouterr().err


def test_scan_reads_a_gs_scene_and_commits_its_shard_to_gs(tmp_path, two_scenes, tiny_models, gcs_emulator):
    _, paths = two_scenes
    bucket = gcs_emulator.make_bucket()
    scene = storage.join(bucket, "in", "s0.tif")
    storage.write_bytes(scene, paths[0].read_bytes())
    out = storage.join(bucket, "out", "s0")
    assert run_cli(["scan", scene, "--out", out, "--discovery-model", tiny_models / "discovery",
                    "--impact-model", tiny_models / "impact"]) == 0
    shard = commit.read_committed(out)
    assert shard.record["scene_id"] == "s0" and shard.record["source"] == scene
    assert storage.exists(storage.join(shard.data_uri, "detections.parquet"))
    assert run_cli(["scan", storage.join(bucket, "in", "missing.tif"), "--out", storage.join(bucket, "o2"),
                    "--discovery-model", tiny_models / "discovery", "--impact-model", tiny_models / "impact"]) == 3
