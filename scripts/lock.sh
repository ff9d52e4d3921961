#!/usr/bin/env bash
# Pin every package the image installs, with the SHA-256 of each of its files (= make lock):
#
#   requirements/build.txt   pip, setuptools and wheel: pyproject.toml's [build-system]
#   requirements/cpu.txt     the dependencies with the `cpu` extra (tensorflow-cpu)
#   requirements/gpu.txt     the dependencies with the `gpu` extra (tensorflow[and-cuda])
#
# resolved for the image, not for this machine: CPython 3.11 on x86-64 Linux with the glibc
# of Debian bookworm (2.36), the base image's. The Dockerfile installs them with
# `pip install --require-hashes`, so a file that differs from the one locked here, or a
# package not locked here, stops the build. Run it after changing a dependency in
# pyproject.toml, or to take newer releases; tests/test_lockfiles.py checks the files
# cover pyproject.toml.
#
# uv comes from the dev extra (UV=... to use another). It reads its index from
# UV_DEFAULT_INDEX or uv.toml; where those are unset, from pip's own `global.index-url`. No
# index is ever written into the files: the image build takes its index from the builder's
# environment too.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
UV=${UV:-$(command -v uv || echo "$ROOT/.venv/bin/uv")}
[ -x "$UV" ] || { echo "lock: needs uv (make install brings it with the dev extra, or UV=path)" >&2; exit 2; }
OUT=${OUT:-requirements}
PYTHON_VERSION=3.11
PLATFORM=x86_64-manylinux_2_36

if [ -z "${UV_DEFAULT_INDEX:-}${UV_INDEX_URL:-}" ]; then
    index=$("$PYTHON" -m pip config get global.index-url 2>/dev/null || true)
    [ -z "$index" ] || export UV_DEFAULT_INDEX=$index
fi

compile() {  # compile OUTPUT UV-ARGS...
    local out=$1
    shift
    "$UV" pip compile --quiet --generate-hashes --python-version "$PYTHON_VERSION" \
        --python-platform "$PLATFORM" --custom-compile-command "make lock" \
        --output-file "$out.part" "$@"
    # Index options would name a host, and pin the build to it: never keep one.
    grep -v -E '^[[:space:]]*--?(index-url|extra-index-url|find-links|trusted-host|i|f)([[:space:]=]|$)' \
        "$out.part" >"$out"
    rm "$out.part"
    echo "locked $out ($(grep -c '^[A-Za-z0-9]' "$out") packages)"
}

mkdir -p "$OUT"
# pyproject.toml's build requirements, and pip itself
BUILD_REQUIRES='import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], "pip", sep="\n")'
"$PYTHON" -c "$BUILD_REQUIRES" | compile "$OUT/build.txt" -
compile "$OUT/cpu.txt" pyproject.toml --extra cpu
compile "$OUT/gpu.txt" pyproject.toml --extra gpu
