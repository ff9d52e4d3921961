"""Data-parallel training: cluster description, and two real worker processes in lockstep."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from minescan.errors import InputError
from minescan.training.distribute import ClusterSpec
from minescan.training.loop import batch_schedule

WORKER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from minescan.training.distribute import ClusterSpec, is_chief, make_strategy

    cluster = ClusterSpec.from_env(os.environ)
    strategy = make_strategy("auto", cluster)  # must exist before any other TF op
    from minescan.training.data import compute_normalization
    from minescan.training.loop import TrainSettings, train

    rng = np.random.default_rng(0)  # the same chips on every worker, as from shared storage
    if sys.argv[2] == "discovery":
        task, y = "discovery", np.array([0, 1] * 4)
        x = rng.integers(500, 1500, (8, 201, 201, 3)).astype(np.uint16)
    else:  # the MapBiomas U-Net: per-pixel masks, some pixels unlabelled
        from minescan.series.unet import build_unet
        from minescan.training.loop import Segmentation

        task = Segmentation(lambda n: build_unet(n, width=2))
        x = rng.normal(size=(8, 32, 32, 3)).astype(np.float32)
        y = rng.choice(np.array([0, 1, 255], np.uint8), size=(8, 32, 32))
    idx = np.arange(8)
    settings = TrainSettings(epochs=1, batch_size=4, seed=5)
    model, history = train(task, x, y, idx, compute_normalization(x, idx), settings,
                           strategy, max_steps=2)
    np.savez(sys.argv[1], *model.get_weights(), replicas=strategy.num_replicas_in_sync,
             chief=is_chief(strategy), loss=history.loss[0])
    """
)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.parametrize("task, n_weights", [("discovery", 10), ("series", 23 * 2 + 18 * 4)])
def test_two_local_workers_end_with_identical_weights(tmp_path, task, n_weights):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
                   TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                         "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path / f"w{index}.npz"), task],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("multi-worker training did not finish in 150 s")
        outputs.append(out.decode(errors="replace")[-3000:])
        assert proc.returncode == 0, outputs[-1]
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert int(w0["replicas"]) == 2
    assert bool(w0["chief"]) and not bool(w1["chief"])
    weights = [k for k in w0.files if k.startswith("arr_")]
    # discovery: 5 conv layers × (kernel, bias); U-Net: 23 convs × 2, 18 BatchNorms × 4
    assert len(weights) == n_weights
    for key in weights:
        np.testing.assert_array_equal(w0[key], w1[key])
    assert float(w0["loss"]) == float(w1["loss"])  # the reduced loss is the global one


def test_workers_each_read_different_chips_of_one_global_batch():
    # The schedule is the same on every worker; replica r takes columns [r·b, (r+1)·b).
    schedule = batch_schedule(np.arange(10), epochs=2, global_batch=4, seed=0)
    assert schedule.shape == (6, 4)  # ceil(10 / 4) = 3 steps per epoch, wrapped
    first_epoch = schedule[:3].ravel()
    assert set(first_epoch[:10]) == set(range(10))
    per_replica = schedule.reshape(6, 2, 2)
    assert not set(per_replica[0, 0]) & set(per_replica[0, 1])


def test_cluster_from_tf_config():
    spec = ClusterSpec.from_env({"TF_CONFIG": json.dumps(
        {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}})})
    assert spec.workers == ("a:1", "b:2") and spec.index == 1 and not spec.is_chief


def test_cluster_from_an_indexed_job_and_headless_service():
    spec = ClusterSpec.from_env({"JOB_COMPLETION_INDEX": "2"}, job="train", service="train-workers",
                                n_workers=3, port=2222)
    assert spec.workers == ("train-0.train-workers:2222", "train-1.train-workers:2222",
                            "train-2.train-workers:2222")
    assert spec.index == 2
    assert spec.tf_config()["task"] == {"type": "worker", "index": 2}


def test_no_cluster_without_tf_config_or_service():
    assert ClusterSpec.from_env({"JOB_COMPLETION_INDEX": "0"}) is None


def test_bad_tf_config_is_an_input_error():
    with pytest.raises(InputError, match="TF_CONFIG"):
        ClusterSpec.from_env({"TF_CONFIG": "{not json"})
    with pytest.raises(InputError, match="needs --job-name and --workers"):
        ClusterSpec.from_env({"JOB_COMPLETION_INDEX": "0"}, service="svc")
