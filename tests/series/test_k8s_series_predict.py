"""The U-Net prediction as an Indexed Job per region (k8s/series/predict): renders, validates,
and keeps the scan map's locked-down pod and failure policy."""

from __future__ import annotations

import re
from functools import cache

import kubernetes_validate
import pytest

from tests.test_k8s_manifests import (
    FAIL_FOR_GOOD,
    K8S,
    K8S_VERSIONS,
    KUBECTL,
    dockerfile_runtime,
    kustomize,
    parse_with_the_cli,
)

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (for `kubectl kustomize`) is not on PATH")


@cache
def rendered() -> tuple[dict, ...]:
    return tuple(kustomize(K8S / "series" / "predict"))


def job() -> dict:
    (found,) = [o for o in rendered() if o["kind"] == "Job"]
    return found


def map_job() -> dict:
    (found,) = [o for o in kustomize(K8S / "overlays" / "cpu-jobs") if o["kind"] == "Job"
                and o["metadata"]["name"] == "minescan-map"]
    return found


def test_every_object_validates_strictly():
    # the base's default-deny and egress policies come along (docs/CLUSTER.md, "Security")
    assert {o["kind"] for o in rendered()} == {"Namespace", "ServiceAccount", "ConfigMap", "Job", "NetworkPolicy"}
    for obj in rendered():
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_one_pod_per_region_failing_for_good_only_on_permanent_exit_codes():
    spec = job()["spec"]
    assert spec["completionMode"] == "Indexed" and spec["podReplacementPolicy"] == "Failed"
    assert 1 <= spec["maxFailedIndexes"] <= spec["completions"] and spec["backoffLimitPerIndex"] >= 1
    ignore, fail = spec["podFailurePolicy"]["rules"]
    assert ignore == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert fail["action"] == "FailIndex" and fail["onExitCodes"]["values"] == FAIL_FOR_GOOD
    assert spec["podFailurePolicy"] == map_job()["spec"]["podFailurePolicy"]


def test_the_pod_is_the_scan_maps_locked_down_pod():
    pod, reference = job()["spec"]["template"]["spec"], map_job()["spec"]["template"]["spec"]
    for key in ("serviceAccountName", "automountServiceAccountToken", "securityContext", "restartPolicy",
                "nodeSelector"):
        assert pod[key] == reference[key], key
    (c,), (ref,) = pod["containers"], reference["containers"]
    assert c["securityContext"] == ref["securityContext"] and c["image"] == ref["image"]
    assert c["resources"]["limits"]["memory"] == c["resources"]["requests"]["memory"]
    writable = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/tmp", dockerfile_runtime()["HOME"]} <= writable
    assert all("emptyDir" in v for v in pod["volumes"])


def test_the_pod_command_line_is_one_the_cli_accepts():
    (c,) = job()["spec"]["template"]["spec"]["containers"]
    (params,) = [o["data"] for o in rendered() if o["kind"] == "ConfigMap"
                 and o["metadata"]["name"].startswith("minescan-series-predict-params")]
    env = {}
    for e in c["env"]:
        ref = e.get("valueFrom", {}).get("configMapKeyRef")
        env[e["name"]] = params[ref["key"]] if ref else e["value"]
    words = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in c["args"]]
    assert words[:2] == ["series", "map"] and "--index" not in words
    ctx = parse_with_the_cli(words)
    assert ctx.params["regions"].endswith("regions.txt") and ctx.params["run"].startswith("gs://")
