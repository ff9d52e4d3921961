"""The Kubernetes manifests: every overlay renders, validates offline, and keeps the policy.

Each overlay of `k8s/overlays/` is rendered once with `kubectl kustomize`. Built-in kinds are
validated with kubernetes-validate in strict mode (unknown fields rejected) against the
oldest Kubernetes we support and the newest the package knows; the JobSet, a CRD, against
the schema in `k8s/schemas/` (written from the published v1alpha2 CRD) whose embedded Job
spec is Kubernetes' own batch/v1 schema. The rest pins what the cluster acts on: exit codes
→ podFailurePolicy, the locked-down pods, Workload Identity, GPU placement, and the security
conventions of docs/CLUSTER.md ("Security"), checked on every pod template of every rendered
overlay and release, whoever adds it.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import os
import re
import shutil
import subprocess
from functools import cache
from importlib import resources
from pathlib import Path

import click
import jsonschema
import kubernetes_validate
import pytest
import yaml
from minescan.errors import EXIT_TRANSIENT, EXIT_USAGE, PERMANENT_EXIT_CODES
from referencing import Registry, Resource

from tests.helpers import REPO as ROOT

K8S = ROOT / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
#: the oldest release with everything the manifests use (Job successPolicy is beta in 1.31)
MIN_K8S = "1.31.0"
K8S_VERSIONS = (MIN_K8S, kubernetes_validate.utils.latest_version())
#: exit codes after which a retry cannot help: they fail the scene (or the job) for good
FAIL_FOR_GOOD = sorted({EXIT_USAGE, *PERMANENT_EXIT_CODES})
KUBECTL = shutil.which("kubectl")

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (for `kubectl kustomize`) is not on PATH")


def kustomize(path: Path) -> list[dict]:
    out = subprocess.run([KUBECTL, "kustomize", str(path)], check=True, capture_output=True, text=True)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@cache
def rendered_at(path: str) -> tuple[dict, ...]:
    return tuple(kustomize(K8S / path))


def rendered(overlay: str) -> tuple[dict, ...]:
    return rendered_at(f"overlays/{overlay}")


def objects(overlay: str, kind: str) -> list[dict]:
    return [copy.deepcopy(o) for o in rendered(overlay) if o["kind"] == kind]


def job_specs(overlay: str) -> dict[str, dict]:
    """Every Job spec an overlay creates, by name: plain Jobs and a JobSet's replicatedJobs."""
    specs = {o["metadata"]["name"]: o["spec"] for o in objects(overlay, "Job")}
    for js in objects(overlay, "JobSet"):
        for rj in js["spec"]["replicatedJobs"]:
            specs[f"{js['metadata']['name']}/{rj['name']}"] = rj["template"]["spec"]
    return specs


def component(spec: dict) -> str:
    return spec["template"]["metadata"]["labels"]["app.kubernetes.io/component"]


def dockerfile_runtime() -> dict[str, str]:
    """USER and the ENV values the runtime stages of the Dockerfile set."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    home = re.findall(r"(?<!\w)HOME=(\S+)", text)
    return {"USER": user[-1], "HOME": home[-1]}


@cache
def jobset_validator(k8s_version: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((K8S / "schemas" / "jobset-v1alpha2.json").read_text())
    defs_file = (
        resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / f"v{k8s_version}-local-strict"
        / "_definitions.json"
    )
    definitions = Resource.from_contents(json.loads(defs_file.read_text()))
    registry = definitions @ Registry()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def check_jobset_rules(js: dict) -> None:
    """The JobSet rules a schema cannot express (CRD CEL rule and webhook ordering)."""
    rjobs = js["spec"]["replicatedJobs"]
    names = [rj["name"] for rj in rjobs]
    assert len(set(names)) == len(names), f"replicatedJob names repeat: {names}"
    assert "dependsOn" not in rjobs[0], "the first replicatedJob cannot use dependsOn"
    for i, rj in enumerate(rjobs):
        for dep in rj.get("dependsOn", []):
            assert dep["name"] in names[:i], f"{rj['name']} depends on {dep['name']}, not an earlier job"
    in_order = js["spec"].get("startupPolicy", {}).get("startupPolicyOrder") == "InOrder"
    assert not (in_order and any("dependsOn" in rj for rj in rjobs)), "startupPolicy InOrder excludes dependsOn"


# --- rendering and schema validation -------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_objects_validate_strictly_against_kubernetes_schemas(overlay):
    objs = rendered(overlay)
    assert objs, f"{overlay} rendered nothing"
    for obj in objs:
        for version in K8S_VERSIONS:
            if obj["kind"] == "JobSet":
                jobset_validator(version).validate(obj)
                check_jobset_rules(obj)
            else:
                # raises ValidationError on a bad field, SchemaNotFoundError on an unknown kind
                kubernetes_validate.validate(obj, version, strict=True)


def test_the_expected_overlays_exist():
    assert {"cpu", "gpu", "cpu-jobs", "gpu-jobs", "cpu-prod", "gpu-prod", "gpu-train",
            "gpu-train-multiworker"} <= set(OVERLAYS)
    assert [o["kind"] for o in rendered("gpu")].count("JobSet") == 1
    assert {o["metadata"]["name"] for o in objects("gpu-jobs", "Job")} == {"minescan-map", "minescan-reduce"}


def test_jobset_schema_rejects_what_the_crd_rejects():
    good = objects("gpu", "JobSet")[0]
    validator = jobset_validator(MIN_K8S)
    validator.validate(good)

    unknown_field = copy.deepcopy(good)
    unknown_field["spec"]["replicatedJobs"][1]["dependsOnn"] = []
    bad_status = copy.deepcopy(good)
    bad_status["spec"]["replicatedJobs"][1]["dependsOn"][0]["status"] = "Succeeded"
    bad_job_spec = copy.deepcopy(good)
    bad_job_spec["spec"]["replicatedJobs"][0]["template"]["spec"]["backoffLimitPerIndx"] = 3
    bad_pod_spec = copy.deepcopy(good)
    bad_pod_spec["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["restartPolicy"] = 7
    for broken in (unknown_field, bad_status, bad_job_spec, bad_pod_spec):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)

    depends_first = copy.deepcopy(good)
    depends_first["spec"]["replicatedJobs"].reverse()
    with pytest.raises(AssertionError, match="first replicatedJob"):
        check_jobset_rules(depends_first)


def test_strict_validation_rejects_an_unknown_job_field():
    job = objects("cpu-jobs", "Job")[0]
    job["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesytem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, MIN_K8S, strict=True)


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_jobset_runs_the_same_jobs_as_the_plain_job_manifests(variant):
    plain = job_specs(f"{variant}-jobs")
    jobset = job_specs(variant)
    assert plain["minescan-map"] == jobset["minescan/map"]
    reduce = plain["minescan-reduce"]
    assert reduce.pop("suspend") is True, "the plain reduce must wait for the map (created suspended)"
    assert reduce == jobset["minescan/reduce"]


def test_jobset_reduces_only_after_every_scene_is_mapped():
    js = objects("cpu", "JobSet")[0]
    rjobs = {rj["name"]: rj for rj in js["spec"]["replicatedJobs"]}
    assert list(rjobs) == ["map", "reduce"]
    assert rjobs["reduce"]["dependsOn"] == [{"name": "map", "status": "Complete"}]
    assert "suspend" not in rjobs["reduce"]["template"]["spec"]


# --- exit codes → podFailurePolicy -----------------------------------------------------------


def rules(spec: dict) -> list[dict]:
    return spec["podFailurePolicy"]["rules"]


@pytest.mark.parametrize("overlay", ["cpu", "gpu", "cpu-jobs", "gpu-jobs"])
def test_map_fails_a_scene_for_good_only_on_permanent_exit_codes(overlay):
    (spec,) = [s for s in job_specs(overlay).values() if component(s) == "map"]
    assert spec["completionMode"] == "Indexed"
    assert spec["backoffLimitPerIndex"] >= 1
    assert 1 <= spec["maxFailedIndexes"] <= spec["completions"]
    assert spec["parallelism"] <= spec["completions"]
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    first, second, *rest = rules(spec)
    assert first == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert second["action"] == "FailIndex"
    codes = second["onExitCodes"]
    assert codes["operator"] == "In" and codes["values"] == FAIL_FOR_GOOD == [2, 3, 4, 5, 73]
    assert codes["containerName"] in {c["name"] for c in spec["template"]["spec"]["containers"]}
    assert rest == [], "transient (75), internal (1) and OOM (137) must count toward backoffLimitPerIndex"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_transient_and_internal_failures_are_always_retried(overlay):
    for name, spec in job_specs(overlay).items():
        for rule in rules(spec):
            codes = rule.get("onExitCodes", {}).get("values", [])
            assert EXIT_TRANSIENT not in codes and 1 not in codes, f"{name}: {rule}"
            if rule["action"] == "Ignore":
                assert rule["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]
        assert any(r["action"] == "Ignore" for r in rules(spec)), f"{name} does not ignore preemption"
        assert spec["podReplacementPolicy"] == "Failed"


@pytest.mark.parametrize("overlay", ["cpu", "cpu-jobs"])
def test_reduce_stops_at_once_on_a_permanent_exit_code(overlay):
    (spec,) = [s for s in job_specs(overlay).values() if component(s) == "reduce"]
    fail = [r for r in rules(spec) if r["action"] == "FailJob"]
    assert fail and fail[0]["onExitCodes"]["values"] == FAIL_FOR_GOOD
    args = spec["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["reduce", "--run"] and "--allow-missing" not in args


# --- pods: security, storage, identity -------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_locked_down_as_the_images_user(overlay):
    image = dockerfile_runtime()
    uid, gid = (int(x) for x in image["USER"].split(":"))
    for name, spec in job_specs(overlay).items():
        pod = spec["template"]["spec"]
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == uid != 0 and sc["runAsGroup"] == gid
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["serviceAccountName"] == "minescan"
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for c in pod["containers"]:
            csc = c["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False, name
            assert csc["readOnlyRootFilesystem"] is True, name
            assert csc["capabilities"] == {"drop": ["ALL"]}, name
            # with a read-only root, /tmp and HOME (caches) must be writable volumes
            writable = {m["mountPath"] for m in c["volumeMounts"] if m["name"] in empty_dirs}
            assert {"/tmp", image["HOME"]} <= writable, name
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), name
            assert c["resources"]["limits"]["memory"] == c["resources"]["requests"]["memory"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_credentials_come_only_from_workload_identity(overlay):
    (sa,) = objects(overlay, "ServiceAccount")
    assert sa["metadata"]["name"] == "minescan"
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")
    assert not objects(overlay, "Secret")
    for spec in job_specs(overlay).values():
        pod = spec["template"]["spec"]
        assert all("secret" not in v for v in pod["volumes"])
        for c in pod["containers"]:
            names = {e["name"] for e in c.get("env", [])}
            assert not {n for n in names if re.search("CREDENTIAL|KEY|TOKEN|PASSWORD", n)}, names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_and_parameters_reach_the_pods_under_their_hashed_names(overlay):
    config_maps = {cm["metadata"]["name"]: cm["data"] for cm in objects(overlay, "ConfigMap")}
    for spec in job_specs(overlay).values():
        pod = spec["template"]["spec"]
        for v in pod["volumes"]:
            if "configMap" in v:
                assert v["configMap"]["name"] in config_maps, v
        for c in pod["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    assert ref["key"] in config_maps.get(ref["name"], {}), f"{ref} not rendered"
            # $(VAR) in args is expanded by the kubelet only from the container's own env
            defined = {e["name"] for e in c.get("env", [])}
            for arg in c["args"]:
                assert set(re.findall(r"\$\((\w+)\)", arg)) <= defined, arg


@pytest.mark.parametrize("overlay", ["cpu", "gpu-jobs"])
def test_map_pods_read_the_run_config_from_the_config_map(overlay):
    (spec,) = [s for s in job_specs(overlay).values() if component(s) == "map"]
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"][:2] == ["map", "--manifest"] and "--run" in c["args"]
    assert c["args"][c["args"].index("--config") + 1] == "/etc/minescan/run.yaml"
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/minescan")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config = next(cm for cm in objects(overlay, "ConfigMap") if cm["metadata"]["name"] == volume["configMap"]["name"])
    assert re.fullmatch(r"minescan-config-[a-z0-9]{10}", config["metadata"]["name"])
    assert isinstance(yaml.safe_load(config["data"]["run.yaml"]), dict)
    assert "--index" not in c["args"], "the index must come from JOB_COMPLETION_INDEX"


def test_cluster_run_config_is_the_repository_run_config():
    configs = ROOT / "configs" / "run.yaml"
    if not configs.exists():
        pytest.skip("configs/run.yaml does not exist yet")
    assert yaml.safe_load((K8S / "base" / "run.yaml").read_text()) == yaml.safe_load(configs.read_text())


def container_env(overlay: str, container: dict, job_name: str) -> dict[str, str]:
    """The container's environment as the kubelet would build it from the rendered objects."""
    config_maps = {cm["metadata"]["name"]: cm["data"] for cm in objects(overlay, "ConfigMap")}
    env = {}
    for e in container.get("env", []):
        source = e.get("valueFrom", {})
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[e["name"]] = config_maps[ref["name"]][ref["key"]]
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.labels['batch.kubernetes.io/job-name']":
            env[e["name"]] = job_name
    return env


def parse_with_the_cli(words: list[str]) -> click.Context:
    """Parse a pod's command line with minescan's own click commands (nothing runs)."""
    from minescan.cli.main import cli

    command, ctx = cli, None
    while isinstance(command, click.Group):
        ctx = click.Context(command, info_name=command.name, parent=ctx)
        name, words = words[0], words[1:]
        command = command.get_command(ctx, name)
        assert command is not None, f"minescan has no command {name!r}"
    return command.make_context(command.name, list(words), parent=ctx)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_command_line_is_one_the_cli_accepts(overlay):
    run_config = str(K8S / "base" / "run.yaml")
    for name, spec in job_specs(overlay).items():
        for c in spec["template"]["spec"]["containers"]:
            env = container_env(overlay, c, name)
            words = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in c["args"]]
            words = [run_config if w == "/etc/minescan/run.yaml" else w for w in words]
            ctx = parse_with_the_cli(words)  # raises click.UsageError on an unknown option
            assert not ctx.args, f"{name}: extra arguments {ctx.args}"


# --- model rollouts: training publishes, the -prod overlays follow the prod channel ----------


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_prod_overlays_map_with_the_prod_channel_and_change_nothing_else(variant):
    plain, prod = job_specs(variant), job_specs(f"{variant}-prod")
    assert plain.keys() == prod.keys()
    assert plain["minescan/reduce"] == prod["minescan/reduce"]
    (c,) = prod["minescan/map"]["template"]["spec"]["containers"]
    (base,) = plain["minescan/map"]["template"]["spec"]["containers"]
    assert c["args"] == [*base["args"], "--registry", "$(MINESCAN_REGISTRY_URI)", "--channel", "prod"]
    env = container_env(f"{variant}-prod", c, "minescan-map")
    assert env["MINESCAN_REGISTRY_URI"].startswith("gs://")
    assert {k: v for k, v in c.items() if k not in ("args", "env")} == \
        {k: v for k, v in base.items() if k not in ("args", "env")}


@pytest.mark.parametrize("overlay", ["gpu-train", "gpu-train-multiworker"])
def test_training_jobs_publish_the_model_to_the_registry(overlay):
    (job,) = objects(overlay, "Job")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    args = c["args"]
    assert args[args.index("--publish") + 1] == "$(MINESCAN_REGISTRY_URI)"
    assert container_env(overlay, c, job["metadata"]["name"])["MINESCAN_REGISTRY_URI"].startswith("gs://")


# --- node placement ---------------------------------------------------------------------------


def gpus(pod: dict) -> int:
    return sum(int(c["resources"].get("limits", {}).get("nvidia.com/gpu", 0)) for c in pod["containers"])


@pytest.mark.parametrize("overlay", ["gpu", "gpu-jobs"])
def test_gpu_overlay_puts_one_gpu_per_scene_and_keeps_the_reduce_on_cpu(overlay):
    for spec in job_specs(overlay).values():
        pod = spec["template"]["spec"]
        assert pod["containers"][0]["image"] == "minescan:gpu"
        if component(spec) == "map":
            assert gpus(pod) == 1
            assert "cloud.google.com/gke-accelerator" in pod["nodeSelector"]
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        else:
            assert gpus(pod) == 0 and "cloud.google.com/gke-accelerator" not in pod.get("nodeSelector", {})


@pytest.mark.parametrize("overlay", ["cpu", "cpu-jobs"])
def test_cpu_overlay_asks_for_no_gpu(overlay):
    assert "nvidia.com/gpu" not in json.dumps(rendered(overlay))
    for spec in job_specs(overlay).values():
        pod = spec["template"]["spec"]
        assert pod["containers"][0]["image"] == "minescan:cpu"
        assert pod["nodeSelector"] == {"kubernetes.io/arch": "amd64"}


def test_single_node_training_uses_several_gpus_in_one_pod():
    (job,) = objects("gpu-train", "Job")
    pod = job["spec"]["template"]["spec"]
    assert job["spec"].get("completions", 1) == 1 and gpus(pod) > 1
    args = pod["containers"][0]["args"]
    assert args[0] == "train" and args[args.index("--strategy") + 1] == "mirrored"
    assert "cloud.google.com/gke-accelerator" in pod["nodeSelector"]


def test_multiworker_training_finds_its_workers_through_the_headless_service():
    (job,) = objects("gpu-train-multiworker", "Job")
    (svc,) = objects("gpu-train-multiworker", "Service")
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == int(env["MINESCAN_NUM_WORKERS"]) >= 2
    assert spec["successPolicy"] == {"rules": [{"succeededIndexes": "0"}]}, "worker 0 is the chief"
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    assert pod["subdomain"] == svc["metadata"]["name"] == env["MINESCAN_WORKER_SERVICE"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert int(env["MINESCAN_WORKER_PORT"]) == svc["spec"]["ports"][0]["port"] == 12345
    assert {"name": "worker", "containerPort": 12345} in pod["containers"][0]["ports"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--strategy") + 1] == "multiworker"
    assert gpus(pod) >= 1


# --- scripts/deploy.sh ----------------------------------------------------------------------


def deploy(overlay: str, **env: str) -> subprocess.CompletedProcess:
    run_env = {k: v for k, v in os.environ.items() if k not in {"IMAGE", "TAG", "GSA", "SCENES", "REGISTRY"}}
    run_env.update(DRY_RUN="1", **env)
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy.sh"), overlay], env=run_env, capture_output=True, text=True
    )


RUN_ENV = {
    "IMAGE": "europe-docker.pkg.dev/acme/minescan/minescan",
    "TAG": "1.2.3",
    "GSA": "runner@acme.iam.gserviceaccount.com",
    "MANIFEST": "gs://acme-scenes/manifests/mg.txt",
    "RUN": "gs://acme-runs/runs/mg-2025",
    "SCENES": "40",
}


def test_deploy_renders_one_run_with_its_scenes_image_and_identity():
    out = deploy("gpu", **RUN_ENV)
    assert out.returncode == 0, out.stderr
    objs = [o for o in yaml.safe_load_all(out.stdout) if o]
    (js,) = [o for o in objs if o["kind"] == "JobSet"]
    jobset_validator(MIN_K8S).validate(js)
    map_spec = js["spec"]["replicatedJobs"][0]["template"]["spec"]
    assert map_spec["completions"] == map_spec["parallelism"] == 40 and map_spec["maxFailedIndexes"] == 2
    for rj in js["spec"]["replicatedJobs"]:
        image = rj["template"]["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "europe-docker.pkg.dev/acme/minescan/minescan:1.2.3-gpu"
    (sa,) = [o for o in objs if o["kind"] == "ServiceAccount"]
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == RUN_ENV["GSA"]
    params = next(o["data"] for o in objs if o["metadata"]["name"].startswith("minescan-params-"))
    assert params["MINESCAN_MANIFEST_URI"] == RUN_ENV["MANIFEST"] and params["MINESCAN_RUN_URI"] == RUN_ENV["RUN"]
    for obj in objs:
        if obj["kind"] != "JobSet":
            kubernetes_validate.validate(obj, MIN_K8S, strict=True)


def test_deploy_can_reduce_despite_missing_scenes_with_plain_jobs():
    out = deploy("cpu-jobs", **{**RUN_ENV, "SCENES": "3", "ALLOW_MISSING": "1"})
    assert out.returncode == 0, out.stderr
    jobs = {o["metadata"]["name"]: o["spec"] for o in yaml.safe_load_all(out.stdout) if o and o["kind"] == "Job"}
    assert jobs["minescan-map"]["completions"] == 3 and jobs["minescan-map"]["maxFailedIndexes"] == 1
    assert jobs["minescan-reduce"]["template"]["spec"]["containers"][0]["args"][-1] == "--allow-missing"


def test_deploy_points_a_prod_overlay_at_the_registry_and_requires_it():
    out = deploy("gpu-prod", **RUN_ENV, REGISTRY="gs://acme-models/registry")
    assert out.returncode == 0, out.stderr
    objs = [o for o in yaml.safe_load_all(out.stdout) if o]
    params = next(o["data"] for o in objs if o["metadata"]["name"].startswith("minescan-params-"))
    assert params["MINESCAN_REGISTRY_URI"] == "gs://acme-models/registry"
    missing = deploy("gpu-prod", **RUN_ENV)
    assert missing.returncode == 2 and "REGISTRY" in missing.stderr and missing.stdout == ""


def test_deploy_refuses_a_run_without_its_scene_count():
    env = {k: v for k, v in RUN_ENV.items() if k != "SCENES"}
    out = deploy("cpu", **env)
    assert out.returncode == 2 and "SCENES" in out.stderr and out.stdout == ""


def test_deploy_refuses_allow_missing_where_the_reduce_could_never_start():
    out = deploy("gpu", **{**RUN_ENV, "ALLOW_MISSING": "1"})
    assert out.returncode == 2 and "-jobs overlay" in out.stderr and out.stdout == ""


# --- security: every pod template of every overlay and release (docs/CLUSTER.md, "Security") --


def entry_points() -> list[str]:
    """Every kustomization applied as it is: not a Component and not a resource of another one
    (the overlays, and directories such as k8s/series), as scripts/release.sh finds them."""
    found = [p for p in K8S.rglob("kustomization.yaml") if "releases" not in p.relative_to(K8S).parts]
    docs = {p: yaml.safe_load(p.read_text()) for p in found}
    used = {(p.parent / r).resolve() for p, d in docs.items() for r in d.get("resources", [])}
    return sorted(str(p.parent.relative_to(K8S)) for p, d in docs.items()
                  if d.get("kind") != "Component" and p.parent.resolve() not in used)


#: what `kubectl apply` may send: every entry point, and every release written by scripts/release.sh
ENTRY_POINTS = entry_points()
RELEASED = sorted(str(p.parent.relative_to(K8S)) for p in K8S.glob("releases/*/*/kustomization.yaml"))
DEPLOYABLE = ENTRY_POINTS + RELEASED
#: no Job, however stuck, may run longer than this
MAX_DEADLINE_S = 7 * 24 * 3600


def pod_templates(objs) -> list[tuple[str, dict]]:
    """Every pod template (or Pod) inside the objects, wherever it sits, with where it was found:
    anything whose `spec` has `containers` is one, whatever kind holds it."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            if isinstance(node.get("spec"), dict) and isinstance(node["spec"].get("containers"), list):
                found.append((where, node))
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    for obj in objs:
        walk(obj, f"{obj['kind']}/{obj['metadata']['name']}")
    return found


def all_job_specs(objs) -> dict[str, dict]:
    """Every Job spec: Jobs, CronJobs' job templates and JobSets' replicated Jobs."""
    specs = {}
    for obj in objs:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Job":
            specs[name] = obj["spec"]
        elif obj["kind"] == "CronJob":
            specs[name] = obj["spec"]["jobTemplate"]["spec"]
        elif obj["kind"] == "JobSet":
            for rj in obj["spec"]["replicatedJobs"]:
                specs[f"{name}/{rj['name']}"] = rj["template"]["spec"]
    return specs


def every_container(pod: dict) -> list[dict]:
    return [*pod.get("initContainers", []), *pod.get("containers", []), *pod.get("ephemeralContainers", [])]


# The Pod Security Standards, `restricted` profile (which includes `baseline`), rule by rule as
# https://kubernetes.io/docs/concepts/security/pod-security-standards/ states them.
BASELINE_ADDABLE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
RESTRICTED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}


def restricted_violations(template: dict) -> list[str]:
    """What in a pod template the `restricted` Pod Security Standard refuses (empty: admitted)."""
    pod, bad = template["spec"], []
    psc = pod.get("securityContext", {})
    containers = every_container(pod)
    scs = [(c["name"], c.get("securityContext", {})) for c in containers]
    # baseline
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            bad.append(f"{field}: host namespaces")
    for name, sc in [("pod", psc), *scs]:
        if sc.get("windowsOptions", {}).get("hostProcess"):
            bad.append(f"{name}: HostProcess")
        selinux = sc.get("seLinuxOptions", {})
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            bad.append(f"{name}: seLinuxOptions {selinux}")
        if sc.get("appArmorProfile", {}).get("type", "RuntimeDefault") not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{name}: appArmorProfile {sc['appArmorProfile']}")
        if sc.get("seccompProfile", {}).get("type") == "Unconfined":
            bad.append(f"{name}: seccompProfile Unconfined")
    for key, value in template.get("metadata", {}).get("annotations", {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/"):
            if not (value == "runtime/default" or value.startswith("localhost/")):
                bad.append(f"AppArmor annotation {key}={value}")
    for name, sc in scs:
        if sc.get("privileged"):
            bad.append(f"{name}: privileged")
        if sc.get("procMount", "Default") != "Default":
            bad.append(f"{name}: procMount {sc['procMount']}")
        added = set(sc.get("capabilities", {}).get("add", []))
        if added - BASELINE_ADDABLE_CAPABILITIES:
            bad.append(f"{name}: adds capabilities {sorted(added - BASELINE_ADDABLE_CAPABILITIES)}")
    for c in containers:
        if any(p.get("hostPort", 0) for p in c.get("ports", [])):
            bad.append(f"{c['name']}: hostPort")
    for sysctl in psc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            bad.append(f"sysctl {sysctl['name']}")
    # restricted
    for v in pod.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            bad.append(f"volume {v['name']}: {sorted(kinds - RESTRICTED_VOLUME_TYPES)}")
    for name, sc in scs:
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{name}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            bad.append(f"{name}: capabilities must drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            bad.append(f"{name}: may add only NET_BIND_SERVICE")
        if sc.get("runAsNonRoot") is False or not (psc.get("runAsNonRoot") or sc.get("runAsNonRoot")):
            bad.append(f"{name}: runAsNonRoot must be true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            bad.append(f"{name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{name}: seccompProfile must be RuntimeDefault or Localhost, is {seccomp}")
    return bad


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_every_pod_meets_the_restricted_pod_security_standard(path):
    templates = pod_templates(rendered_at(path))
    assert templates, f"{path} has no pods"
    for where, template in templates:
        assert restricted_violations(template) == [], where


def _first_template() -> dict:
    return copy.deepcopy(pod_templates(rendered("cpu-jobs"))[0][1])


def _container(t: dict) -> dict:
    return t["spec"]["containers"][0]


def _csc(t: dict) -> dict:
    return _container(t)["securityContext"]


RESTRICTED_BREACHES = {
    "host network": (lambda t: t["spec"].update(hostNetwork=True), "host namespaces"),
    "host path": (lambda t: t["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
    "privileged": (lambda t: _csc(t).update(privileged=True), "privileged"),
    "escalation": (lambda t: _csc(t).pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
    "capability added": (lambda t: _csc(t)["capabilities"].update(add=["SYS_ADMIN"]), "SYS_ADMIN"),
    "nothing dropped": (lambda t: _csc(t).pop("capabilities"), "drop ALL"),
    "root user": (lambda t: _csc(t).update(runAsUser=0), "runAsUser 0"),
    "root allowed": (lambda t: [t["spec"]["securityContext"].pop("runAsNonRoot"), _csc(t).pop("runAsNonRoot")],
                     "runAsNonRoot"),
    "no seccomp": (lambda t: t["spec"]["securityContext"].pop("seccompProfile"), "seccompProfile"),
    "unconfined": (lambda t: _csc(t).update(seccompProfile={"type": "Unconfined"}), "Unconfined"),
    "host port": (lambda t: _container(t).update(ports=[{"containerPort": 80, "hostPort": 80}]), "hostPort"),
    "unsafe sysctl": (lambda t: t["spec"]["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
                      "kernel.msgmax"),
    "apparmor off": (lambda t: t.setdefault("metadata", {}).setdefault("annotations", {}).update(
        {"container.apparmor.security.beta.kubernetes.io/minescan": "unconfined"}), "AppArmor"),
    "init container": (lambda t: t["spec"].update(initContainers=[{"name": "init", "image": "minescan"}]), "init:"),
}


@pytest.mark.parametrize("breach", sorted(RESTRICTED_BREACHES))
def test_the_restricted_check_refuses_each_breach(breach):
    template = _first_template()
    assert restricted_violations(template) == []
    mutate, expected = RESTRICTED_BREACHES[breach]
    mutate(template)
    assert any(expected in v for v in restricted_violations(template)), breach


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_the_namespace_enforces_the_restricted_profile(path):
    (ns,) = [o for o in rendered_at(path) if o["kind"] == "Namespace"]
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode
    # enforcement pinned to the oldest supported release's profile; audit and warn track the newest
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v" + ".".join(MIN_K8S.split(".")[:2])
    for mode in ("audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "latest", mode
    namespaced = [o for o in rendered_at(path) if o["kind"] != "Namespace"]
    assert {o["metadata"]["namespace"] for o in namespaced} == {ns["metadata"]["name"]}


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_no_pod_gets_a_kubernetes_api_token(path):
    objs = rendered_at(path)
    accounts = [o for o in objs if o["kind"] == "ServiceAccount"]
    assert accounts and all(sa["automountServiceAccountToken"] is False for sa in accounts)
    for where, template in pod_templates(objs):
        assert template["spec"]["automountServiceAccountToken"] is False, where


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_every_job_and_every_pod_of_it_has_a_bounded_deadline(path):
    jobs = all_job_specs(rendered_at(path))
    assert jobs
    for name, spec in jobs.items():
        pod_deadline = spec["template"]["spec"]["activeDeadlineSeconds"]
        job_deadline = spec["activeDeadlineSeconds"]
        assert 0 < pod_deadline <= job_deadline <= MAX_DEADLINE_S, name


def map_deadline(spec: dict) -> int:
    """The map Job's deadline: every scene using all its pods at the pod deadline, plus an hour."""
    pods = spec["completions"] * (spec["backoffLimitPerIndex"] + 1)
    return math.ceil(pods / spec["parallelism"]) * spec["template"]["spec"]["activeDeadlineSeconds"] + 3600


@pytest.mark.parametrize("overlay", ["cpu", "gpu", "cpu-jobs", "gpu-jobs"])
def test_the_map_deadline_leaves_room_for_every_retry_of_every_scene(overlay):
    (spec,) = [s for s in job_specs(overlay).values() if component(s) == "map"]
    assert spec["activeDeadlineSeconds"] == map_deadline(spec)
    # one scene takes 1-2 min on CPUs (docs/BENCHMARKS.md): the pod deadline is generous, not open
    assert 15 * 60 <= spec["template"]["spec"]["activeDeadlineSeconds"] <= 3600


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_every_image_is_minescan_to_be_pinned_or_already_by_digest(path):
    for where, template in pod_templates(rendered_at(path)):
        for c in every_container(template["spec"]):
            image = c["image"]
            assert re.fullmatch(r"minescan(:[\w.-]+)?", image) or re.search(r"@sha256:[0-9a-f]{64}$", image), where


# --- network policy -----------------------------------------------------------------------------

DNS_PORTS = {("UDP", 53), ("TCP", 53)}
KUBE_DNS = "pods{kubernetes.io/metadata.name=kube-system}{k8s-app=kube-dns}"
#: what every pod may reach: DNS (kube-dns, NodeLocal DNSCache, Cloud DNS on the metadata
#: address), the GKE metadata server for Workload Identity tokens, and HTTPS outside the VPC
PUBLIC = "0.0.0.0/0-10.0.0.0/8,100.64.0.0/10,169.254.0.0/16,172.16.0.0/12,192.168.0.0/16"
BASE_EGRESS = {
    *((resolver, proto, port)
      for resolver in (KUBE_DNS, "169.254.20.10/32", "169.254.169.254/32")
      for proto, port in DNS_PORTS),
    ("169.254.169.252/32", "TCP", 988),
    ("169.254.169.254/32", "TCP", 80),
    (PUBLIC, "TCP", 443),
}
PRIVATE_GOOGLE_ACCESS = {("199.36.153.8/30", "TCP", 443), ("199.36.153.4/30", "TCP", 443)}
WORKERS = "pods{app.kubernetes.io/component=train-worker}"
DASK = "pods{dask.org/cluster-name=minescan-series}"
SERIES_FILTER = "pods{app.kubernetes.io/component=series-filter}"
DASK_OPERATOR = "pods{kubernetes.io/metadata.name=dask-operator}{}"
#: traffic allowed on top, by the component of the pod, as (egress, ingress): training workers
#: talk to each other; the Dask scheduler and workers (k8s/series) to each other, reached by
#: the filter Job's pod and by the Dask operator on the scheduler's ports
POD_TO_POD = {
    "train-worker": ({(WORKERS, "TCP", None)}, {(WORKERS, "TCP", None)}),
    "series-dask": (
        {(DASK, "TCP", None)},
        {(DASK, "TCP", None), (SERIES_FILTER, "TCP", None), (DASK_OPERATOR, "TCP", 8786), (DASK_OPERATOR, "TCP", 8787)},
    ),
    "series-filter": ({(DASK, "TCP", None)}, set()),
}


def pod_labels(where: str, template: dict) -> dict:
    """The labels the pod will carry: its template's, and those the Dask operator adds to the
    pods of a DaskCluster (`dask.org/cluster-name`)."""
    labels = dict(template["metadata"]["labels"])
    kind, name = where.split(".")[0].split("/")
    if kind == "DaskCluster":
        labels["dask.org/cluster-name"] = name
    return labels


def selector(sel: dict | None) -> str:
    labels = sorted(f"{k}={v}" for k, v in (sel or {}).get("matchLabels", {}).items())
    assert set(sel or {}) <= {"matchLabels"}, f"only matchLabels selectors are used: {sel}"
    return "{" + ",".join(labels) + "}"


def peer(p: dict) -> str:
    if "ipBlock" in p:
        block = p["ipBlock"]
        return block["cidr"] + ("-" + ",".join(sorted(block["except"])) if "except" in block else "")
    ns = p.get("namespaceSelector")
    return "pods" + (selector(ns) if ns is not None else "") + selector(p.get("podSelector"))


def selects(policy: dict, labels: dict) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return wanted.items() <= labels.items()


def allowed(policies: list[dict], labels: dict, direction: str) -> set[tuple]:
    """The (peer, protocol, port) a pod with these labels may reach (egress) or be reached from."""
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    out = set()
    for pol in policies:
        if not selects(pol, labels) or direction not in pol["spec"]["policyTypes"]:
            continue
        for rule in pol["spec"].get(key, []):
            assert rule.get(peers_key) and rule.get("ports"), f"{pol['metadata']['name']}: a rule open to all"
            for p in rule[peers_key]:
                for port in rule["ports"]:
                    out.add((peer(p), port["protocol"], port.get("port")))
    return out


def network_policies(objs) -> list[dict]:
    return [o for o in objs if o["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_every_pod_is_denied_all_traffic_it_is_not_allowed(path):
    (deny,) = [p for p in network_policies(rendered_at(path)) if p["metadata"]["name"] == "minescan-default-deny"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize("path", DEPLOYABLE)
def test_pods_reach_only_dns_the_metadata_server_google_apis_and_their_own_peers(path):
    objs = rendered_at(path)
    policies = network_policies(objs)
    for where, template in pod_templates(objs):
        labels = pod_labels(where, template)
        egress, ingress = POD_TO_POD.get(labels["app.kubernetes.io/component"], (set(), set()))
        assert allowed(policies, labels, "Egress") == BASE_EGRESS | egress, where
        assert allowed(policies, labels, "Ingress") == ingress, f"{where}: no ingress but what the table allows"
    for pol in policies:
        for rule in pol["spec"].get("ingress", []):
            assert all("ipBlock" not in p for p in rule["from"]), "no ingress from addresses"


def test_only_training_workers_talk_to_each_other():
    objs = rendered("gpu-train-multiworker")
    policies = network_policies(objs)
    (job,) = objects("gpu-train-multiworker", "Job")
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert (WORKERS, "TCP", None) in allowed(policies, labels, "Ingress")
    assert (WORKERS, "TCP", None) in allowed(policies, labels, "Egress")
    # the workers' gRPC port is among what their policy opens (all TCP: NCCL picks its own ports)
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert int(env["MINESCAN_WORKER_PORT"]) == 12345
    for overlay in ("cpu", "gpu-jobs", "gpu-train"):
        assert all(p["metadata"]["name"] != "minescan-train-workers" for p in network_policies(rendered(overlay)))


def test_https_is_open_to_public_addresses_only():
    (policy,) = [p for p in network_policies(rendered("cpu")) if p["metadata"]["name"] == "minescan-google-apis"]
    (rule,) = policy["spec"]["egress"]
    block = rule["to"][0]["ipBlock"]
    private_ranges = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")
    private = [ipaddress.ip_network(n) for n in private_ranges]
    assert block["cidr"] == "0.0.0.0/0"
    excluded = [ipaddress.ip_network(n) for n in block["except"]]
    assert all(any(p.subnet_of(e) for e in excluded) for p in private)
    # and the GKE metadata server is not reachable on 443 through it
    assert any(ipaddress.ip_address("169.254.169.254") in e for e in excluded)


def test_private_google_access_narrows_https_to_its_two_ranges():
    out = deploy("cpu", **RUN_ENV, PRIVATE_GOOGLE_ACCESS="1")
    assert out.returncode == 0, out.stderr
    objs = [o for o in yaml.safe_load_all(out.stdout) if o]
    policies = network_policies(objs)
    for where, template in pod_templates(objs):
        egress = allowed(policies, template["metadata"]["labels"], "Egress")
        assert egress == (BASE_EGRESS - {(PUBLIC, "TCP", 443)}) | PRIVATE_GOOGLE_ACCESS, where
    for pol in policies:
        kubernetes_validate.validate(pol, MIN_K8S, strict=True)


# --- releases: images by digest -------------------------------------------------------------------

DIGEST_CPU = "europe-docker.pkg.dev/acme/minescan/minescan@sha256:" + "c" * 64
DIGEST_GPU = "europe-docker.pkg.dev/acme/minescan/minescan@sha256:" + "9" * 64


def release(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    run_env = {k: v for k, v in os.environ.items() if k not in {"IMAGE", "TAG", "BASE_IMAGE"}}
    run_env.update(RELEASES=str(tmp), **env)
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "release.sh"), *args], env=run_env, capture_output=True, text=True
    )


def test_a_release_refers_to_every_image_by_the_digest_it_was_pushed_with(tmp_path):
    base = "python:3.11-slim-bookworm@sha256:" + "e" * 64
    out = release(tmp_path, "pin", DIGEST_CPU, DIGEST_GPU, TAG="1.2.3", BASE_IMAGE=base)
    assert out.returncode == 0, out.stderr
    names = {Path(e).name: e for e in ENTRY_POINTS}
    assert sorted(p.name for p in (tmp_path / "1.2.3").iterdir() if p.is_dir()) == sorted(names)
    assert set(OVERLAYS) <= set(names)
    for name, entry in names.items():
        objs = kustomize(tmp_path / "1.2.3" / name)
        original = json.dumps(rendered_at(entry))
        variant = "gpu" if "minescan:gpu" in original else "cpu"
        expected = DIGEST_GPU if variant == "gpu" else DIGEST_CPU
        images = {c["image"] for _, t in pod_templates(objs) for c in every_container(t["spec"])}
        assert images == {expected}, name
        # the release is the entry point with nothing changed but the image
        assert json.dumps(objs).replace(expected, "IMG") == original.replace(f"minescan:{variant}", "IMG")
    record = dict(line.split("=", 1) for line in (tmp_path / "1.2.3" / "release.env").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert record["CPU_IMAGE"] == DIGEST_CPU and record["GPU_IMAGE"] == DIGEST_GPU and record["BASE_IMAGE"] == base
    assert re.fullmatch(r"[0-9a-f]{64}", record["LOCK_CPU_SHA256"])

    deployed = deploy("gpu", **{k: v for k, v in RUN_ENV.items() if k not in {"IMAGE", "TAG"}},
                      RELEASE="1.2.3", RELEASES=str(tmp_path))
    assert deployed.returncode == 0, deployed.stderr
    objs = [o for o in yaml.safe_load_all(deployed.stdout) if o]
    assert {c["image"] for _, t in pod_templates(objs) for c in every_container(t["spec"])} == {DIGEST_GPU}


def test_a_release_is_never_overwritten_and_takes_only_digests(tmp_path):
    assert release(tmp_path, "pin", DIGEST_CPU, DIGEST_GPU, TAG="1.0").returncode == 0
    before = {p: p.read_bytes() for p in (tmp_path / "1.0").rglob("*") if p.is_file()}
    again = release(tmp_path, "pin", DIGEST_GPU, DIGEST_CPU, TAG="1.0")
    assert again.returncode == 2 and "exists" in again.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "1.0").rglob("*") if p.is_file()} == before
    for bad in ("europe-docker.pkg.dev/acme/minescan/minescan:1.0-cpu", DIGEST_CPU[:-1]):
        out = release(tmp_path, "pin", bad, DIGEST_GPU, TAG="2.0")
        assert out.returncode == 2 and "by digest" in out.stderr
        assert not (tmp_path / "2.0").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.0"], "no staging directory left behind"


def test_a_release_refuses_an_image_repository_without_a_registry(tmp_path):
    out = release(tmp_path, IMAGE="minescan", BASE_IMAGE="python:3.11-slim-bookworm@sha256:" + "e" * 64)
    assert out.returncode == 2 and "IMAGE" in out.stderr and not list(tmp_path.iterdir())


def deployed_map(stdout: str) -> dict:
    (spec,) = [s for s in all_job_specs([o for o in yaml.safe_load_all(stdout) if o]).values() if component(s) == "map"]
    return spec


def test_deploy_sizes_the_map_deadline_for_the_run():
    for parallelism, expected in (("40", 4 * 1800 + 3600), ("10", 16 * 1800 + 3600), ("7", 23 * 1800 + 3600)):
        for overlay in ("gpu", "cpu-jobs"):
            out = deploy(overlay, **RUN_ENV, PARALLELISM=parallelism)
            assert out.returncode == 0, out.stderr
            spec = deployed_map(out.stdout)
            assert spec["activeDeadlineSeconds"] == map_deadline(spec) == expected, (overlay, parallelism)
    assert deployed_map(deploy("cpu", **RUN_ENV, MAP_DEADLINE="86400").stdout)["activeDeadlineSeconds"] == 86400


# --- the image --------------------------------------------------------------------------------


def test_dockerfile_builds_cpu_and_gpu_images_as_a_non_root_user():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S+", text, re.M)
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, re.M)
    assert {"cpu", "gpu"} <= set(stages)
    assert stages[-1] == "cpu", "a plain `docker build .` must give the CPU image (last stage)"
    assert "requirements/cpu.txt" in text and "requirements/gpu.txt" in text
    assert text.count('ENTRYPOINT ["minescan"]') == 2
    assert dockerfile_runtime()["USER"].split(":")[0] != "0"
    assert not re.search(r"(?i)^(COPY|ADD)\s.*(credential|\.json|key)", text, re.M)


def test_dockerignore_lets_only_the_package_into_the_build_context():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules_ = [line for line in lines if line and not line.startswith("#")]
    assert rules_[0] == "*", "allow-list: everything is ignored unless re-included"
    assert {"!pyproject.toml", "!README.md", "!requirements/", "!job/"} <= set(rules_)
