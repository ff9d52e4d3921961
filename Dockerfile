# minescan container image: `--target cpu` (tensorflow-cpu) or `--target gpu` (CUDA TensorFlow).
#
#   docker build --target cpu -t minescan:cpu .
#   docker build --target gpu -t minescan:gpu .
#
# BASE_IMAGE must provide python3 (3.11+) with the venv module. The GPU target needs no CUDA
# base image: `tensorflow[and-cuda]` brings CUDA and cuDNN as pip wheels; the node supplies
# only the NVIDIA driver (GKE's GPU node pools install it). No credentials are ever copied in:
# in a pod they come from Workload Identity, on a laptop from ADC.
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

FROM base AS venv
RUN python3 -m venv /opt/venv && pip install --upgrade pip setuptools wheel

# Dependencies in their own layer, keyed on pyproject.toml only: a stub package lets pip
# resolve and install every dependency, so editing job/ does not re-download TensorFlow.
FROM venv AS deps-cpu
WORKDIR /src
COPY pyproject.toml README.md ./
RUN mkdir -p job/minescan && touch job/minescan/__init__.py \
    && pip install --no-build-isolation ".[cpu]" && pip uninstall -y minescan && rm -rf /src/*

FROM venv AS deps-gpu
WORKDIR /src
COPY pyproject.toml README.md ./
RUN mkdir -p job/minescan && touch job/minescan/__init__.py \
    && pip install --no-build-isolation ".[gpu]" && pip uninstall -y minescan && rm -rf /src/*

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
RUN groupadd --gid 10001 minescan \
    && useradd --uid 10001 --gid 10001 --home-dir /home/minescan --create-home \
       --shell /usr/sbin/nologin minescan
ENV HOME=/home/minescan \
    XDG_CACHE_HOME=/home/minescan/.cache \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /home/minescan
LABEL org.opencontainers.image.title="minescan" \
      org.opencontainers.image.description="Find surface mines and tailings dams in Sentinel-2 imagery" \
      org.opencontainers.image.licenses="Apache-2.0"

# The dependency venv is one large layer that stays cached across code changes; the package
# goes on top in two small ones. The wheel is COPYed rather than bind-mounted: buildah does
# not key its layer cache on a mounted stage's content, and would keep a stale package.
FROM runtime AS gpu
COPY --from=deps-gpu /opt/venv /opt/venv
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
USER 10001:10001
ENTRYPOINT ["minescan"]
CMD ["--help"]

# Last, so a plain `docker build .` gives the CPU image.
FROM runtime AS cpu
COPY --from=deps-cpu /opt/venv /opt/venv
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels
USER 10001:10001
ENTRYPOINT ["minescan"]
CMD ["--help"]
