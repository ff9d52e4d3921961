#!/usr/bin/env bash
# Make a release: build the cpu and gpu images over a base image pinned by digest, push them,
# read the digests the registry gave them, and write k8s/releases/TAG/: one kustomization per
# overlay (and per other directory applied as it is, such as k8s/series) that refers to its
# image by that digest, and release.env, the record of what went in.
# A tag can be moved to other contents; a digest cannot, so a release runs exactly what was
# built, on every node, however long after.
#
#   IMAGE=europe-docker.pkg.dev/PROJECT/minescan/minescan scripts/release.sh     # = make release
#   RELEASE=0.1.0 GSA=... MANIFEST=... RUN=... SCENES=40 scripts/deploy.sh gpu   # deploy it
#
# Env:
#   IMAGE       image repository without tag (required)
#   TAG         release name and tag prefix (default: the version in pyproject.toml); the
#               images are pushed as TAG-cpu and TAG-gpu, and deployed by digest
#   BASE_IMAGE  the Dockerfile's base image. Given by digest (NAME@sha256:...) it is used as
#               is; given by tag (default python:3.11-slim-bookworm) it is resolved to the
#               digest the registry serves for that tag now, with skopeo or docker buildx
#   CONTAINER   docker (default) or podman
#   PLATFORM    linux/amd64 (default)
#   BUILD=0     push IMAGE:TAG-cpu and IMAGE:TAG-gpu as already built instead of building
#   RELEASES    where releases are written (default k8s/releases)
#
#   scripts/release.sh pin CPU_REF GPU_REF
#       only write the release for images already pushed (REF = NAME@sha256:<64 hex>); the
#       base is recorded if BASE_IMAGE names it by digest
#
# A release directory is never overwritten: remove it first to remake it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
TAG=${TAG:-$VERSION}
CONTAINER=${CONTAINER:-docker}
PLATFORM=${PLATFORM:-linux/amd64}
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}
RELEASES=${RELEASES:-$ROOT/k8s/releases}
DIGEST_RE='^[^@[:space:]]+@sha256:[0-9a-f]{64}$'

log() { printf '[release] %s\n' "$*" >&2; }
die() { printf 'release: %s\n' "$*" >&2; exit 2; }

[[ "$TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ ]] || die "TAG '$TAG' is not a valid image tag"

# The digest a registry serves for a tag now. Both tools print the registry's own descriptor
# of the tag (for a multi-platform image, its index), so the digest is the registry's.
resolve_digest() {
    local ref=$1 digest
    if command -v skopeo >/dev/null; then
        digest=$(skopeo inspect --format '{{.Digest}}' "docker://$ref") \
            || die "could not read the digest of $ref from its registry (skopeo failed)"
    elif [ "$CONTAINER" = docker ]; then
        digest=$(docker buildx imagetools inspect "$ref" --format '{{json .Manifest}}' \
            | grep -o '"digest": *"sha256:[0-9a-f]*"' | head -1 | grep -o 'sha256:[0-9a-f]*') \
            || die "could not read the digest of $ref from its registry (docker buildx failed)"
    else
        die "cannot resolve $ref to a digest: install skopeo, or pass BASE_IMAGE=NAME@sha256:..."
    fi
    [[ "$ref@$digest" =~ $DIGEST_RE ]] || die "could not read the digest of $ref (got '$digest')"
    echo "$ref@$digest"
}

pinned_base() {
    if [[ "$BASE_IMAGE" == *@sha256:* ]]; then
        [[ "$BASE_IMAGE" =~ $DIGEST_RE ]] || die "BASE_IMAGE '$BASE_IMAGE' is not NAME@sha256:<64 hex>"
        echo "$BASE_IMAGE"
    else
        log "resolving the base image $BASE_IMAGE to its current digest"
        resolve_digest "$BASE_IMAGE"
    fi
}

# Push one image and print IMAGE@sha256:... as the registry stored it.
push() {
    local ref=$1 digest
    if [ "$CONTAINER" = podman ]; then
        local file
        file=$(mktemp)
        podman push --digestfile "$file" "$ref" >&2
        digest=$(cat "$file")
        rm -f "$file"
    else
        docker push "$ref" >&2
        digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" \
            | grep -m1 "^$IMAGE@sha256:" | cut -d@ -f2)
    fi
    [[ "$IMAGE@$digest" =~ $DIGEST_RE ]] || die "no digest for $ref after the push (got '$digest')"
    echo "$IMAGE@$digest"
}

# Every kustomization under k8s/ that is applied itself: not a Component, and not a resource
# of another one (the overlays, and directories such as k8s/series applied as they are).
ENTRY_POINTS='
import pathlib, re, sys
k8s = pathlib.Path(sys.argv[1])
found = [p for p in k8s.rglob("kustomization.yaml") if "releases" not in p.relative_to(k8s).parts]
def resources(p):
    out, inside = [], False
    for line in p.read_text().splitlines():
        if re.match(r"\S", line):
            inside = line.startswith("resources:")
        elif inside and (m := re.match(r"\s*-\s*(\S+)", line)):
            out.append((p.parent / m.group(1)).resolve())
    return out
used = {r for p in found for r in resources(p)}
for p in sorted(found):
    if not re.search(r"(?m)^kind:\s*Component\s*$", p.read_text()) and p.parent.resolve() not in used:
        print(p.parent)
'

# Write RELEASES/TAG/<name>/kustomization.yaml for every entry point, aside, then publish it
# by a rename. The images: entry is the one `kustomize edit set image minescan=REF` writes;
# which of the two images an entry point gets is the variant its own render asks for.
pin() {
    local cpu_ref=$1 gpu_ref=$2 base=${3:-unrecorded} dest=$RELEASES/$TAG stage dir name ref rel
    for ref in "$cpu_ref" "$gpu_ref"; do
        [[ "$ref" =~ $DIGEST_RE ]] || die "'$ref' is not an image by digest (NAME@sha256:<64 hex>)"
    done
    [ ! -e "$dest" ] || die "release $dest exists; remove it first to remake it"
    mkdir -p "$RELEASES"
    stage=$(mktemp -d "$RELEASES/.$TAG.XXXXXX")
    trap "rm -rf '$stage'" EXIT
    for dir in $(python3 -c "$ENTRY_POINTS" "$ROOT/k8s"); do
        name=$(basename "$dir")
        [ ! -e "$stage/$name" ] || die "two entry points are named $name"
        if kubectl kustomize "$dir" | grep -q 'image: minescan:gpu'; then ref=$gpu_ref; else ref=$cpu_ref; fi
        mkdir "$stage/$name"
        # relative to where the directory will be once published: kustomize refuses absolute paths
        rel=$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' \
            "$dir" "$dest/$name")
        cat >"$stage/$name/kustomization.yaml" <<EOF
# Release $TAG of minescan, $name, written by scripts/release.sh: the image by the
# digest the registry gave it. Deploy with RELEASE=$TAG scripts/deploy.sh $name.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel
images:
  - name: minescan
    newName: ${ref%@*}
    digest: ${ref#*@}
EOF
    done
    cat >"$stage/release.env" <<EOF
# What release $TAG is made of (scripts/release.sh).
RELEASE=$TAG
CPU_IMAGE=$cpu_ref
GPU_IMAGE=$gpu_ref
BASE_IMAGE=$base
GIT_COMMIT=$(git -C "$ROOT" describe --always --dirty --abbrev=40 2>/dev/null || echo unknown)
LOCK_BUILD_SHA256=$(sha256sum requirements/build.txt | cut -d' ' -f1)
LOCK_CPU_SHA256=$(sha256sum requirements/cpu.txt | cut -d' ' -f1)
LOCK_GPU_SHA256=$(sha256sum requirements/gpu.txt | cut -d' ' -f1)
EOF
    chmod 755 "$stage"  # mktemp made it private
    mv "$stage" "$dest"
    trap - EXIT
    log "wrote $dest"
}

# The base image an image was built over, from the label the Dockerfile sets.
base_of() {
    "$CONTAINER" image inspect --format '{{index .Config.Labels "org.opencontainers.image.base.name"}}' "$1"
}

main() {
    [[ "${IMAGE:-}" == */* ]] \
        || die "set IMAGE to the image repository in your registry, without tag (e.g. europe-docker.pkg.dev/PROJECT/minescan/minescan)"
    [ ! -e "$RELEASES/$TAG" ] || die "release $RELEASES/$TAG exists; remove it first to remake it"
    local base variant cpu_ref gpu_ref
    if [ "${BUILD:-1}" != 0 ]; then
        base=$(pinned_base)
        for variant in cpu gpu; do
            log "building $IMAGE:$TAG-$variant over $base"
            "$CONTAINER" build --platform "$PLATFORM" --build-arg BASE_IMAGE="$base" \
                --target "$variant" -t "$IMAGE:$TAG-$variant" .
        done
    fi
    # Whether built now or before: only images over a base pinned by digest are released.
    base=$(base_of "$IMAGE:$TAG-cpu")
    [[ "$base" =~ $DIGEST_RE ]] || die "$IMAGE:$TAG-cpu was built over '$base', not a base image by digest"
    [ "$(base_of "$IMAGE:$TAG-gpu")" = "$base" ] || die "the cpu and gpu images were built over different bases"
    cpu_ref=$(push "$IMAGE:$TAG-cpu")
    gpu_ref=$(push "$IMAGE:$TAG-gpu")
    pin "$cpu_ref" "$gpu_ref" "$base"
}

case "${1:-}" in
pin)
    [ $# -eq 3 ] || die "usage: scripts/release.sh pin CPU_REF GPU_REF"
    # the base is recorded only when it is known by digest
    if [[ "$BASE_IMAGE" =~ $DIGEST_RE ]]; then pin "$2" "$3" "$BASE_IMAGE"; else pin "$2" "$3"; fi
    ;;
"") main ;;
*) die "usage: scripts/release.sh [pin CPU_REF GPU_REF]" ;;
esac
