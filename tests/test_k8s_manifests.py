"""The Kubernetes manifests: every overlay renders, validates offline, and keeps the policy.

Each overlay of `k8s/overlays/` is rendered once with `kubectl kustomize`. Built-in kinds are
validated with kubernetes-validate in strict mode (unknown fields rejected) against the
oldest Kubernetes we support and the newest the package knows; the JobSet, a CRD, against
the schema in `k8s/schemas/` (written from the published v1alpha2 CRD) whose embedded Job
spec is Kubernetes' own batch/v1 schema. The rest pins what the cluster acts on: exit codes
→ podFailurePolicy, the locked-down pods, Workload Identity, GPU placement.
"""

from __future__ import annotations

import copy
import json
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
def rendered(overlay: str) -> tuple[dict, ...]:
    return tuple(kustomize(K8S / "overlays" / overlay))


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


# --- the image --------------------------------------------------------------------------------


def test_dockerfile_builds_cpu_and_gpu_images_as_a_non_root_user():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S+", text, re.M)
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, re.M)
    assert {"cpu", "gpu"} <= set(stages)
    assert stages[-1] == "cpu", "a plain `docker build .` must give the CPU image (last stage)"
    assert '".[cpu]"' in text and '".[gpu]"' in text
    assert text.count('ENTRYPOINT ["minescan"]') == 2
    assert dockerfile_runtime()["USER"].split(":")[0] != "0"
    assert not re.search(r"(?i)^(COPY|ADD)\s.*(credential|\.json|key)", text, re.M)


def test_dockerignore_lets_only_the_package_into_the_build_context():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules_ = [line for line in lines if line and not line.startswith("#")]
    assert rules_[0] == "*", "allow-list: everything is ignored unless re-included"
    assert {"!pyproject.toml", "!README.md", "!job/"} <= set(rules_)
