# minescan container image: `--target cpu` (tensorflow-cpu) or `--target gpu` (CUDA TensorFlow).
#
#   docker build --target cpu -t minescan:cpu .
#   docker build --target gpu -t minescan:gpu .
#
# BASE_IMAGE must provide python3 3.11 with the venv module on Debian bookworm's glibc (the
# lock files in requirements/ are resolved for exactly that). The default is a tag, which
# moves: a release pins it by digest, e.g.
#
#   docker build --build-arg BASE_IMAGE=python:3.11-slim-bookworm@sha256:<digest> ...
#
# where <digest> is what `skopeo inspect --format '{{.Digest}}' docker://python:3.11-slim-bookworm`
# (or `docker buildx imagetools inspect python:3.11-slim-bookworm`) prints. scripts/release.sh
# (make release) does this itself and releases only images built over a base by digest; the
# image records its base in the label org.opencontainers.image.base.name.
#
# Every Python package is installed from requirements/*.txt with `--require-hashes`: the
# exact files locked by `make lock`, nothing resolved at build time. The GPU target needs no
# CUDA base image: `tensorflow[and-cuda]` brings CUDA and cuDNN as pip wheels; the node
# supplies only the NVIDIA driver (GKE's GPU node pools install it). No credentials are ever
# copied in: in a pod they come from Workload Identity, on a laptop from ADC. The package
# index is pip's default unless the build is given one (`--build-arg PIP_INDEX=URL`, a mirror
# without credentials: build arguments are visible in the image history); the hashes make
# the files the same whichever index serves them.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# Shared by every stage so builder and runtime agree on where python3 lives (the venv's
# interpreter is a symlink into the base image).
FROM ${BASE_IMAGE} AS base
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANG=C.UTF-8

# pip, setuptools and wheel as locked; later stages build with these (--no-build-isolation),
# never with build tools fetched unpinned.
FROM base AS venv
ARG PIP_INDEX
COPY requirements/build.txt /tmp/requirements/
RUN python3 -m venv /opt/venv \
    && pip install ${PIP_INDEX:+--index-url "$PIP_INDEX"} --require-hashes \
       -r /tmp/requirements/build.txt \
    && rm -rf /tmp/requirements

# Dependencies in their own layer, keyed on the lock file only, so editing job/ does not
# re-download TensorFlow. `pip check` fails the build if the lock is not self-consistent.
FROM venv AS deps-cpu
ARG PIP_INDEX
COPY requirements/cpu.txt /tmp/requirements/
RUN pip install ${PIP_INDEX:+--index-url "$PIP_INDEX"} --require-hashes --no-build-isolation \
       -r /tmp/requirements/cpu.txt \
    && pip check && rm -rf /tmp/requirements

FROM venv AS deps-gpu
ARG PIP_INDEX
COPY requirements/gpu.txt /tmp/requirements/
RUN pip install ${PIP_INDEX:+--index-url "$PIP_INDEX"} --require-hashes --no-build-isolation \
       -r /tmp/requirements/gpu.txt \
    && pip check && rm -rf /tmp/requirements

# The package itself, as a wheel: the only thing rebuilt when job/ changes.
FROM venv AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY job ./job
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# Runtime: the base and an unprivileged user. The numeric UID lets the kubelet enforce
# runAsNonRoot; HOME is a directory the pod mounts an emptyDir over, because
# the root filesystem is read-only there (TensorFlow, matplotlib and gcsfs write caches).
FROM base AS runtime
ARG BASE_IMAGE
RUN groupadd --gid 10001 minescan \
    && useradd --uid 10001 --gid 10001 --home-dir /home/minescan --create-home \
       --shell /usr/sbin/nologin minescan
ENV HOME=/home/minescan \
    XDG_CACHE_HOME=/home/minescan/.cache \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /home/minescan
LABEL org.opencontainers.image.title="minescan" \
      org.opencontainers.image.description="Find surface mines and tailings dams in Sentinel-2 imagery" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# The dependency venv is one large layer that stays cached across code changes; the package
# goes on top in two small ones. The wheel is COPYed rather than bind-mounted: buildah does
# not key its layer cache on a mounted stage's content, and would keep a stale package.
FROM runtime AS gpu
COPY --from=deps-gpu /opt/venv /opt/venv
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && pip check && rm -rf /tmp/wheels
USER 10001:10001
ENTRYPOINT ["minescan"]
CMD ["--help"]

# Last, so a plain `docker build .` gives the CPU image.
FROM runtime AS cpu
COPY --from=deps-cpu /opt/venv /opt/venv
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && pip check && rm -rf /tmp/wheels
USER 10001:10001
ENTRYPOINT ["minescan"]
CMD ["--help"]
