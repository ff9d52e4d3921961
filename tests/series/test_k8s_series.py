"""The time-series filter on a Dask Kubernetes operator cluster: k8s/series renders and validates.

Built-in kinds are validated strictly with kubernetes-validate; the DaskCluster, a CRD,
against `k8s/schemas/daskcluster-v1.json` (written from the operator's documented CRD),
whose pod and Service specs are Kubernetes' own core/v1 schemas. The rest pins what the
run relies on: the Job reaches the operator's scheduler Service, every pod is locked down
like the Jobs' pods, and workers and the Job share the cube's volume.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from importlib import resources

import jsonschema
import kubernetes_validate
import pytest
from minescan.errors import EXIT_TRANSIENT, EXIT_USAGE, PERMANENT_EXIT_CODES
from referencing import Registry, Resource

from tests.test_k8s_manifests import (
    K8S,
    K8S_VERSIONS,
    KUBECTL,
    MIN_K8S,
    dockerfile_runtime,
    kustomize,
    parse_with_the_cli,
)

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (for `kubectl kustomize`) is not on PATH")


@cache
def rendered() -> tuple[dict, ...]:
    return tuple(kustomize(K8S / "series"))


def one(kind: str) -> dict:
    (obj,) = [copy.deepcopy(o) for o in rendered() if o["kind"] == kind]
    return obj


@cache
def daskcluster_validator(k8s_version: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((K8S / "schemas" / "daskcluster-v1.json").read_text())
    defs = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{k8s_version}-local-strict"
    registry = Resource.from_contents(json.loads((defs / "_definitions.json").read_text())) @ Registry()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def pods() -> dict[str, dict]:
    """The pod specs the run creates: the Job's, the operator's scheduler and workers."""
    cluster = one("DaskCluster")["spec"]
    return {"job": one("Job")["spec"]["template"]["spec"], "scheduler": cluster["scheduler"]["spec"],
            "worker": cluster["worker"]["spec"]}


def test_every_object_validates_strictly():
    kinds = [o["kind"] for o in rendered()]
    assert {"DaskCluster", "Job", "NetworkPolicy", "ServiceAccount", "ConfigMap"} <= set(kinds)
    for obj in rendered():
        for version in K8S_VERSIONS:
            if obj["kind"] == "DaskCluster":
                daskcluster_validator(version).validate(obj)
            else:
                kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "worker", "replica"), 3),  # a typo the operator would silently drop
        (("spec", "scheduler", "service", "tpye"), "ClusterIP"),
        (("spec", "worker", "spec", "containers", 0, "comand"), ["dask"]),
        (("spec", "worker", "replicas"), "eight"),
    ],
)
def test_the_daskcluster_schema_rejects_what_the_crd_rejects(path, value):
    broken = one("DaskCluster")
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        daskcluster_validator(MIN_K8S).validate(broken)
    del broken["spec"]["scheduler"]["service"]
    with pytest.raises(jsonschema.ValidationError):
        daskcluster_validator(MIN_K8S).validate(broken)


def test_the_job_runs_the_filter_verb_on_the_operators_scheduler():
    job, cluster = one("Job"), one("DaskCluster")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    params = next(cm["data"] for cm in rendered() if cm["metadata"]["name"].startswith("minescan-series-params-"))
    env = {e["name"]: params[e["valueFrom"]["configMapKeyRef"]["key"]] for e in container["env"] if "valueFrom" in e}
    for e in container["env"]:
        if "valueFrom" in e:
            assert e["valueFrom"]["configMapKeyRef"]["name"].startswith("minescan-series-params-")
    words = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in container["args"]]
    ctx = parse_with_the_cli(words)  # raises click.UsageError on an unknown option
    assert ctx.info_name == "filter" and not ctx.args
    service = f"{cluster['metadata']['name']}-scheduler"  # the operator's name for it
    port = next(p["port"] for p in cluster["spec"]["scheduler"]["service"]["ports"] if p["name"] == "tcp-comm")
    assert ctx.params["scheduler"] == f"tcp://{service}:{port}"
    assert ctx.params["cube"].startswith("/data/") and ctx.params["out"].startswith("/data/")
    selector = cluster["spec"]["scheduler"]["service"]["selector"]
    assert selector == {"dask.org/cluster-name": cluster["metadata"]["name"], "dask.org/component": "scheduler"}


def test_the_job_fails_for_good_on_bad_input_and_retries_the_rest():
    spec = one("Job")["spec"]
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[1]["action"] == "FailJob"
    assert rules[1]["onExitCodes"]["values"] == sorted({EXIT_USAGE, *PERMANENT_EXIT_CODES})
    assert EXIT_TRANSIENT not in rules[1]["onExitCodes"]["values"] and spec["backoffLimit"] >= 1
    assert spec["podReplacementPolicy"] == "Failed"
    pod_deadline = spec["template"]["spec"]["activeDeadlineSeconds"]
    assert spec["activeDeadlineSeconds"] >= (spec["backoffLimit"] + 1) * pod_deadline


@pytest.mark.parametrize("name", ["job", "scheduler", "worker"])
def test_every_pod_runs_locked_down_as_the_images_user(name):
    uid, gid = (int(x) for x in dockerfile_runtime()["USER"].split(":"))
    pod = pods()[name]
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True and (sc["runAsUser"], sc["runAsGroup"]) == (uid, gid) and uid != 0
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] == "minescan" and pod["automountServiceAccountToken"] is False
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    for c in pod["containers"]:
        csc = c["securityContext"]
        assert csc["allowPrivilegeEscalation"] is False and csc["readOnlyRootFilesystem"] is True
        assert csc["capabilities"] == {"drop": ["ALL"]}
        assert {"/tmp", dockerfile_runtime()["HOME"]} <= {m["mountPath"] for m in c["volumeMounts"]
                                                           if m["name"] in empty_dirs}
        assert c["resources"]["limits"]["memory"] == c["resources"]["requests"]["memory"]
        assert c["image"] == "minescan:cpu"


def test_the_job_and_the_workers_see_the_cube_at_the_same_path():
    mounts = {}
    for name in ("job", "worker"):
        pod = pods()[name]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] in claims]
        mounts[name] = (claims[mount["name"]], mount["mountPath"])
    assert mounts["job"] == mounts["worker"] == ("minescan-series-data", "/data")
    assert "persistentVolumeClaim" not in json.dumps(pods()["scheduler"]), "the scheduler never touches pixels"


def test_workers_use_the_dask_cli_of_the_image():
    worker = pods()["worker"]["containers"][0]
    assert worker["command"] == ["dask"] and worker["args"][0] == "worker"
    threads = int(worker["args"][worker["args"].index("--nthreads") + 1])
    assert threads == int(worker["resources"]["requests"]["cpu"])
    scheduler = pods()["scheduler"]["containers"][0]
    assert scheduler["command"] == ["dask"] and scheduler["args"][0] == "scheduler"


def test_only_the_run_reaches_the_dask_pods():
    cluster = one("DaskCluster")
    name = cluster["metadata"]["name"]
    policies = {p["metadata"]["name"]: p["spec"] for p in rendered() if p["kind"] == "NetworkPolicy"}
    dask = policies["minescan-series-dask"]
    assert dask["podSelector"] == {"matchLabels": {"dask.org/cluster-name": name}}
    peers = [p["podSelector"]["matchLabels"] for p in dask["ingress"][0]["from"]]
    job_labels = one("Job")["spec"]["template"]["metadata"]["labels"]
    assert {"dask.org/cluster-name": name} in peers and any(p.items() <= job_labels.items() for p in peers)
    assert policies["minescan-series-filter"]["podSelector"]["matchLabels"].items() <= job_labels.items()
    operator = dask["ingress"][1]
    assert operator["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dask-operator"}}}]
    assert {p["port"] for p in operator["ports"]} == {8786, 8787}
