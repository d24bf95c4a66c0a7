# syntax=docker/dockerfile:1
# One image for both roles: `rds-csi controller` runs as the unprivileged user below; the node
# DaemonSet runs `rds-csi node` as root in a privileged container (nvme connect, mkfs, mount).
# No HEALTHCHECK: Kubernetes probes the driver through the livenessprobe sidecar.
#
#   docker build -t registry.example.org/rds-csi:0.1.0 .
#
# PYTHON_IMAGE may be any Debian-based image with python3 and its venv module (CI builds one
# with debootstrap: scripts/build-image). Build and runtime stages must share it: the
# virtualenv made in the first runs on the second's interpreter.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- build: the driver and its dependencies in a virtualenv -------------------------------------
FROM ${PYTHON_IMAGE} AS build
# A CA bundle for pip behind a TLS-inspecting proxy (passed by scripts/build-image); empty: pip's.
ARG PIP_CERT=""
WORKDIR /src
# A virtualenv of its own: pip never writes into the base's Python (Debian's python3 refuses
# that, PEP 668), and the runtime stage copies just this directory.
RUN python3 -m venv /opt/rds-csi
COPY pyproject.toml README.md ./
COPY src/ src/
# Trimmed for run time: no pip or setuptools; no C/Cython sources, headers or type stubs that
# some wheels ship beside their compiled modules (~15 MB); not the Kubernetes client's asyncio
# twin (kubernetes/aio, ~40 MB; the synchronous kubernetes.client stays, and the smoke test in
# scripts/build-image imports it); no bytecode for that client, which the driver does not
# import yet (~50 MB of it). The rest is compiled here once, not in memory at every start.
RUN /opt/rds-csi/bin/python -m pip install --no-cache-dir --no-compile . \
 && /opt/rds-csi/bin/python -m pip uninstall -y -q pip setuptools \
 && rm -rf /opt/rds-csi/lib/python3*/site-packages/kubernetes/aio \
 && find /opt/rds-csi/lib -type f \
      \( -name '*.c' -o -name '*.h' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pyi' \) -delete \
 && /opt/rds-csi/bin/python -m compileall -q -j 0 -x '/kubernetes/' /opt/rds-csi/lib

# --- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="rds-csi" \
      org.opencontainers.image.description="Kubernetes CSI driver for MikroTik ROSE Data Server (NVMe/TCP)" \
      org.opencontainers.image.licenses="Apache-2.0"

# What the node plugin runs: nvme-cli (connect/disconnect/list), e2fsprogs (mkfs.ext4,
# resize2fs), xfsprogs (mkfs.xfs, xfs_growfs), util-linux (blkid, findmnt, lsblk, blockdev),
# mount (mount, umount, losetup).
RUN apt-get update \
 && apt-get install -y --no-install-recommends nvme-cli e2fsprogs xfsprogs util-linux mount \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log

COPY --from=build /opt/rds-csi /opt/rds-csi

RUN groupadd --system --gid 10001 rds-csi \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin rds-csi

ENV PATH=/opt/rds-csi/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
ENTRYPOINT ["rds-csi"]
CMD ["--help"]
