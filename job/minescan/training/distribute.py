"""Which `tf.distribute` strategy trains, and where the cluster description comes from.

- `default`: one device (whatever TensorFlow picks).
- `mirrored`: all GPUs of this node, gradients all-reduced each step.
- `multiworker`: `MultiWorkerMirroredStrategy` across processes/nodes. The cluster comes
  from `TF_CONFIG`, or, in a Kubernetes Indexed Job, from the pod's completion index and a
  headless Service: worker i is `<job>-<i>.<service>:<port>` (the hostnames an Indexed Job
  with `subdomain: <service>` gives its pods).
- `auto`: multiworker when a cluster is described, mirrored with several GPUs, else default.

Keras 3 `fit` fails under MultiWorkerMirroredStrategy (keras#20585), so every strategy is
driven by the one custom loop in `loop.py`. The environment is read only by the CLI
(`ClusterSpec.from_env`); the library takes the resolved value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError

StrategyName = Literal["auto", "default", "mirrored", "multiworker"]


class ClusterSpec(BaseModel):
    """The workers of a multi-worker run and which one this process is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: tuple[str, ...] = Field(description="host:port of every worker, in task order")
    index: int = Field(description="this process's task index")

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    def tf_config(self) -> dict[str, Any]:
        return {"cluster": {"worker": list(self.workers)}, "task": {"type": "worker", "index": self.index}}

    @classmethod
    def from_tf_config(cls, text: str) -> "ClusterSpec":
        try:
            raw = json.loads(text)
            workers = tuple(raw["cluster"]["worker"])
            task = raw["task"]
            index = int(task["index"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"TF_CONFIG is not valid JSON with cluster.worker and task.index: {exc}") from None
        if task.get("type", "worker") not in ("worker", "chief"):
            raise InputError(f"TF_CONFIG task type {task.get('type')!r}: only workers are supported")
        return cls(workers=workers, index=index)

    @classmethod
    def from_indexed_job(cls, *, job: str, service: str, n_workers: int, index: int, port: int) -> "ClusterSpec":
        if not 0 <= index < n_workers:
            raise InputError(f"completion index {index} is outside 0..{n_workers - 1}")
        return cls(workers=tuple(f"{job}-{i}.{service}:{port}" for i in range(n_workers)), index=index)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        job: str | None = None,
        service: str | None = None,
        n_workers: int | None = None,
        port: int = 2222,
    ) -> "ClusterSpec | None":
        """TF_CONFIG if set; else an Indexed Job's JOB_COMPLETION_INDEX with --service; else None."""
        if env.get("TF_CONFIG"):
            return cls.from_tf_config(env["TF_CONFIG"])
        if service and "JOB_COMPLETION_INDEX" in env:
            if not job or not n_workers:
                raise InputError("an Indexed Job cluster needs --job-name and --workers with --service")
            return cls.from_indexed_job(
                job=job, service=service, n_workers=n_workers,
                index=int(env["JOB_COMPLETION_INDEX"]), port=port,
            )
        return None


def make_strategy(name: StrategyName, cluster: ClusterSpec | None = None) -> Any:
    """Build the strategy. MultiWorkerMirrored must be built before any other TF op runs."""
    import tensorflow as tf

    if name == "auto":
        if cluster is not None and len(cluster.workers) > 1:
            name = "multiworker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if cluster is None:
        raise InputError("--strategy multiworker needs TF_CONFIG or --service with JOB_COMPLETION_INDEX")
    # An explicit resolver, so the process environment is never rewritten behind the CLI.
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec({"worker": list(cluster.workers)}),
        task_type="worker",
        task_id=cluster.index,
        rpc_layer="grpc",
    )
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def is_chief(strategy: Any) -> bool:
    """True on the worker that writes outputs (task 0, or the only process)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type in ("chief", None) or (resolver.task_type == "worker" and resolver.task_id == 0)
