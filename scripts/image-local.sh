#!/usr/bin/env bash
# Build the CPU image on a machine with no Docker daemon and no image registry, then run it.
#
# podman/buildah (from Debian) build the Dockerfile with --isolation=chroot over a Debian
# bookworm base made with debootstrap, since no registry is reachable to pull python:3.11-slim.
# Inside the image it runs `minescan --help`, builds the discovery network, and scans a small
# synthetic scene as the unprivileged user with a read-only root filesystem, as a pod would.
#
#   sudo scripts/image-local.sh            # IMAGE=localhost/minescan:cpu-local by default
#
# Env: IMAGE, DEBIAN_MIRROR (default: debootstrap's own), PIP_INDEX (a package index for the
#      build, default pip's), MINESCAN_IMAGE_CACHE (where the base rootfs tarball is kept),
#      REPORT_DIR (build log and timings; default build/image-local).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

IMAGE=${IMAGE:-localhost/minescan:cpu-local}
BASE_IMAGE=localhost/minescan-base:bookworm
SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-}
CACHE_DIR=${MINESCAN_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minescan-image}
REPORT_DIR=${REPORT_DIR:-$ROOT/build/image-local}
BASE_TAR=$CACHE_DIR/$SUITE-python3-rootfs.tar
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[image-local] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

ensure_tools() {
    local missing=()
    for tool in podman buildah debootstrap runc; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] && return
    log "installing ${missing[*]} from Debian"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman buildah debootstrap runc
}

# Trust the CAs this machine added to its own store: where egress goes through a
# TLS-inspecting proxy, pip inside the build needs them to reach the package index. Only
# this local base gets them; the Dockerfile's default base image is untouched.
trust_host_cas() {
    local rootfs=$1 found=0 crt
    for crt in /usr/local/share/ca-certificates/*.crt; do
        [ -e "$crt" ] || continue
        cp "$crt" "$rootfs/usr/local/share/ca-certificates/"
        found=1
    done
    [ $found -eq 1 ] || return 0
    chroot "$rootfs" update-ca-certificates >/dev/null
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"
}

# A minimal Debian with python3, pip and venv, cached as a tarball: debootstrap takes minutes.
make_base_tarball() {
    [ -s "$BASE_TAR" ] && return
    local rootfs
    rootfs=$(mktemp -d)
    log "debootstrap $SUITE into $rootfs"
    # without a mirror argument debootstrap uses its own default
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        "$SUITE" "$rootfs" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$REPORT_DIR/debootstrap.log" 2>&1 \
        || { tail -20 "$REPORT_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
    trust_host_cas "$rootfs"
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/*
    mkdir -p "$CACHE_DIR"
    tar --numeric-owner -C "$rootfs" -cf "$BASE_TAR.part" .
    mv "$BASE_TAR.part" "$BASE_TAR"
    rm -rf "$rootfs"
}

import_base() {
    podman image exists "$BASE_IMAGE" && return
    make_base_tarball
    log "importing $BASE_TAR as $BASE_IMAGE"
    podman import --quiet --change "ENV PATH=$IMAGE_PATH" --change 'CMD ["/bin/bash"]' \
        "$BASE_TAR" "$BASE_IMAGE" >/dev/null
}

build_image() {
    log "building --target cpu over $BASE_IMAGE (log: $REPORT_DIR/build.log)"
    local start=$SECONDS
    podman build --isolation=chroot --layers --target cpu \
        --build-arg BASE_IMAGE="$BASE_IMAGE" ${PIP_INDEX:+--build-arg PIP_INDEX="$PIP_INDEX"} \
        -t "$IMAGE" -f Dockerfile . \
        >"$REPORT_DIR/build.log" 2>&1 \
        || { tail -30 "$REPORT_DIR/build.log" >&2; die "image build failed"; }
    BUILD_SECONDS=$((SECONDS - start))
}

# As in the pod: numeric non-root user, read-only root, writable /tmp and HOME only.
# runc with explicit, lowered ulimits: in a container without CAP_SYS_RESOURCE, podman's
# default rlimits cannot be set (and crun refuses hybrid cgroups). Override with RUN_FLAGS.
RUN_FLAGS=${RUN_FLAGS:---runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096}
run_in_image() {
    # shellcheck disable=SC2086  # RUN_FLAGS is a list of flags
    podman run --rm $RUN_FLAGS --network none --read-only --user 10001:10001 \
        --tmpfs /tmp:rw,size=2g --tmpfs /home/minescan:rw,size=512m,mode=1777 \
        --entrypoint /bin/sh "$IMAGE" -c "$1"
}

# Model directories holding the two networks with random weights: they exercise the whole
# scan path in the image (loading, hashing, tiling, writing) where no trained ones are bundled.
UNTRAINED_MODELS='
import keras
from minescan.models import networks as M, card as D
from minescan.bands import DEFAULT_BANDS as B
keras.utils.set_random_seed(0)
n = D.Normalization(mean=[0.0] * len(B), std=[10000.0] * len(B))
D.save_model_dir(M.build_discovery_fcn(), "/tmp/models/discovery", kind="discovery", name="untrained",
                 version="0", bands=list(B), normalization=n, class_names=list(M.DISCOVERY_CLASSES), input_size=201,
                 threshold=0.6)
D.save_model_dir(M.build_impact_cnn(), "/tmp/models/impact", kind="impact", name="untrained",
                 version="0", bands=list(B), normalization=n, class_names=list(M.IMPACT_CLASSES), input_size=21)
'

smoke_test() {
    log "inside the image: minescan --help"
    run_in_image 'minescan --help' | tee "$REPORT_DIR/help.txt"
    log "inside the image: build the discovery network"
    run_in_image 'python -c "from minescan.models import networks as m; print(\"discovery params:\", m.build_discovery_fcn().count_params())"' \
        | tee "$REPORT_DIR/models.txt"
    log "inside the image: synthesise a 600x600 scene and scan it"
    local start=$SECONDS
    run_in_image "set -e
        minescan synth scene /tmp/s.tif --size 600 --seed 1
        if [ -d \"\$(python -c 'from minescan.models import bundled; print(bundled.DEMO_MODELS)')/discovery\" ]; then
            echo 'scanning with the bundled demo models'
            minescan scan /tmp/s.tif --out /tmp/out
        else
            echo 'no bundled demo models in this build: scanning with untrained networks (seed 0)'
            python -c '$UNTRAINED_MODELS'
            minescan scan /tmp/s.tif --out /tmp/out \\
                --discovery-model /tmp/models/discovery --impact-model /tmp/models/impact
        fi
        find /tmp/out -maxdepth 2 | sort" | tee "$REPORT_DIR/scan.txt"
    SCAN_SECONDS=$((SECONDS - start))
}

main() {
    [ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and rootful podman need it): sudo $0"
    mkdir -p "$REPORT_DIR"
    ensure_tools
    import_base
    build_image
    local size_bytes
    size_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
    smoke_test
    {
        echo "image: $IMAGE (base $BASE_IMAGE)"
        echo "build_seconds: $BUILD_SECONDS"
        echo "image_size_mb: $((size_bytes / 1000000))"
        echo "scan_seconds: $SCAN_SECONDS"
    } | tee "$REPORT_DIR/report.txt"
    log "ok"
}

main "$@"
