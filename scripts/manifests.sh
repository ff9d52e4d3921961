#!/usr/bin/env bash
# Render every overlay of k8s/ into build/manifests/OVERLAY.yaml, and validate the built-in
# kinds offline with kubernetes-validate --strict when it is installed (the JobSet is
# checked against its CRD schema by tests/test_k8s_manifests.py).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/build/manifests}
VALIDATE=${VALIDATE:-$ROOT/.venv/bin/kubernetes-validate}
K8S_VERSION=${K8S_VERSION:-1.31.0}

if command -v kubectl >/dev/null; then render() { kubectl kustomize "$1"; }
elif command -v kustomize >/dev/null; then render() { kustomize build "$1"; }
else echo "manifests: needs kubectl (or kustomize) on PATH" >&2; exit 1; fi

mkdir -p "$OUT"
for dir in "$ROOT"/k8s/overlays/*/; do
    name=$(basename "$dir")
    render "$dir" >"$OUT/$name.yaml"
    echo "rendered $OUT/$name.yaml"
    if [ -x "$VALIDATE" ]; then
        "$VALIDATE" --strict --quiet --no-warn -k "$K8S_VERSION" "$OUT/$name.yaml"
    fi
done
