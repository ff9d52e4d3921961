"""The image's lock files (requirements/*.txt, written by `make lock`) and how the Dockerfile
uses them: every package pinned with its hashes, every dependency of pyproject.toml covered
at a version it allows, nothing installed in the image but from a lock with --require-hashes.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import REPO as ROOT

LOCKS = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def entries(lock: str) -> dict[str, tuple[str, list[str]]]:
    """name → (version, hashes) of every requirement in a lock file, which must all be pinned."""
    text = (LOCKS / lock).read_text()
    out = {}
    for block in re.split(r"\n(?=\S)", text.replace("\\\n", " ")):
        line = block.split("\n")[0].strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=\S+)+)", line)
        assert m, f"{lock}: not a pinned requirement with hashes: {line[:120]}"
        name = canonicalize_name(m.group(1))
        assert name not in out, f"{lock}: {name} twice"
        out[name] = (m.group(2), m.group(3).split())
    return out


def wanted(extra: str) -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["project"]["dependencies"]
            + PYPROJECT["project"]["optional-dependencies"][extra]]


@pytest.mark.parametrize("lock", ["build.txt", "cpu.txt", "gpu.txt"])
def test_every_locked_package_is_pinned_with_sha256_hashes(lock):
    pinned = entries(lock)
    assert pinned
    for name, (version, hashes) in pinned.items():
        assert hashes and all(HASH.fullmatch(h) for h in hashes), name
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), name


@pytest.mark.parametrize("lock", ["build.txt", "cpu.txt", "gpu.txt"])
def test_a_lock_names_no_index_or_host(lock):
    text = (LOCKS / lock).read_text()
    assert not re.search(r"(?m)^\s*-(?!-hash=)", text), "no pip options (--index-url, --find-links, ...) in a lock"
    assert "://" not in text


@pytest.mark.parametrize("extra", ["cpu", "gpu"])
def test_the_lock_covers_every_dependency_at_a_version_pyproject_allows(extra):
    pinned = entries(f"{extra}.txt")
    for req in wanted(extra):
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} (pyproject.toml) is not in requirements/{extra}.txt: run `make lock`"
        assert req.specifier.contains(pinned[name][0], prereleases=True), f"{name}=={pinned[name][0]} vs {req}"


def test_the_gpu_lock_brings_cuda_and_the_cpu_lock_does_not():
    cpu, gpu = entries("cpu.txt"), entries("gpu.txt")
    assert "tensorflow-cpu" in cpu and "tensorflow" not in cpu
    assert "tensorflow" in gpu and "tensorflow-cpu" not in gpu
    cuda = {n for n in gpu if n.startswith("nvidia-") and n.endswith("-cu12")}
    assert {"nvidia-cudnn-cu12", "nvidia-cublas-cu12", "nvidia-nccl-cu12"} <= cuda
    assert not any(n.startswith("nvidia-") for n in cpu)


def test_both_images_run_the_same_versions_of_what_they_share():
    cpu, gpu = entries("cpu.txt"), entries("gpu.txt")
    shared = set(cpu) & set(gpu)
    assert len(shared) > 50
    assert {n: cpu[n][0] for n in shared} == {n: gpu[n][0] for n in shared}


def test_the_build_lock_has_the_build_system_and_matches_the_runtime_locks():
    build = entries("build.txt")
    for req in map(Requirement, PYPROJECT["build-system"]["requires"]):
        name = canonicalize_name(req.name)
        assert name in build and req.specifier.contains(build[name][0]), req
    assert "pip" in build
    # a later install must not swap the build tools the package was built with
    for lock in ("cpu.txt", "gpu.txt"):
        for name, (version, _) in entries(lock).items():
            if name in build:
                assert build[name][0] == version, (lock, name)


def test_lock_script_drops_index_options_whatever_the_resolver_writes(tmp_path):
    fake_uv = tmp_path / "uv"
    fake_uv.write_text(
        "#!/usr/bin/env bash\n"
        "# stands in for `uv pip compile`: writes a lock with every kind of index option\n"
        'while [ $# -gt 0 ]; do case "$1" in --output-file) out=$2; shift ;; -) cat >/dev/null ;; esac; shift; done\n'
        "cat >\"$out\" <<'EOF'\n"
        "# header\n--index-url https://mirror.invalid/simple\n--extra-index-url https://x.invalid/simple\n"
        "-i https://y.invalid/simple\n--find-links /opt/wheels\n--trusted-host mirror.invalid\n"
        "six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\nEOF\n"
    )
    fake_uv.chmod(0o755)
    env = {**os.environ, "UV": str(fake_uv), "OUT": str(tmp_path / "out"), "UV_DEFAULT_INDEX": "unused"}
    out = subprocess.run(["bash", str(ROOT / "scripts" / "lock.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for lock in ("build.txt", "cpu.txt", "gpu.txt"):
        text = (tmp_path / "out" / lock).read_text()
        assert text == "# header\nsix==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["build.txt", "cpu.txt", "gpu.txt"]


# --- the Dockerfile installs only from the locks ---------------------------------------------


def dockerfile_stages() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    parts = re.split(r"(?m)^FROM\s+\S+\s+AS\s+(\S+)\s*$", text)
    return dict(zip(parts[1::2], parts[2::2]))


def pip_installs(stage_text: str) -> list[str]:
    return [" ".join(m.split()) for m in re.findall(r"pip install\s([^&\n]*)", stage_text)]


def test_the_dockerfile_installs_every_dependency_from_its_lock_with_hashes():
    stages = dockerfile_stages()
    assert pip_installs(stages["venv"]) == [
        '${PIP_INDEX:+--index-url "$PIP_INDEX"} --require-hashes -r /tmp/requirements/build.txt'
    ]
    for variant in ("cpu", "gpu"):
        stage = stages[f"deps-{variant}"]
        assert f"COPY requirements/{variant}.txt /tmp/requirements/" in stage
        (install,) = pip_installs(stage)
        assert "--require-hashes" in install.split() and "--no-build-isolation" in install.split()
        assert install.endswith(f"-r /tmp/requirements/{variant}.txt")
        assert "pip check" in stage
        # the package goes on top without resolving anything
        assert pip_installs(stages[variant]) == ["--no-deps /tmp/wheels/*.whl"]
        assert f"COPY --from=deps-{variant} /opt/venv /opt/venv" in stages[variant]
    every = [i for s in stages.values() for i in pip_installs(s)]
    assert len(every) == 5, "no pip install outside the three lock installs and the two wheel installs"


def test_the_base_image_is_an_argument_that_a_release_pins_by_digest():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"(?m)^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text)
    assert re.search(r"(?m)^FROM \$\{BASE_IMAGE\} AS base$", text)
    assert 'org.opencontainers.image.base.name="${BASE_IMAGE}"' in text
    assert "skopeo inspect --format '{{.Digest}}' docker://python:3.11-slim-bookworm" in text


@pytest.mark.parametrize("base", ["python:3.11-slim-bookworm", "python@sha256:abc"])
def test_a_release_refuses_a_base_it_cannot_pin_by_digest(tmp_path, base):
    # a skopeo that cannot reach any registry, as here
    (tmp_path / "skopeo").write_text("#!/bin/sh\necho 'registry unreachable' >&2\nexit 1\n")
    (tmp_path / "skopeo").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in {"TAG", "BASE_IMAGE"}}
    env.update(PATH=f"{tmp_path}:{env['PATH']}", CONTAINER="podman", IMAGE="registry.invalid/p/minescan",
               BASE_IMAGE=base, RELEASES=str(tmp_path / "releases"))
    out = subprocess.run(["bash", str(ROOT / "scripts" / "release.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert ("could not read the digest of python:3.11-slim-bookworm" in out.stderr) == ("@" not in base)
    assert ("is not NAME@sha256:<64 hex>" in out.stderr) == ("@" in base)
    assert not (tmp_path / "releases").exists()
