# syntax=docker/dockerfile:1
# One image for both roles: `rds-csi controller` runs as the unprivileged user below; the node
# DaemonSet runs `rds-csi node` as root in a privileged container (nvme connect, mkfs, mount).
# No HEALTHCHECK: Kubernetes probes the driver through the livenessprobe sidecar.
#
#   docker build -t registry.example.org/rds-csi:0.1.0 .

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- build: the driver and its dependencies as wheels -----------------------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
RUN python -m pip install --no-cache-dir build
COPY pyproject.toml README.md ./
COPY src/ src/
RUN python -m build --wheel --outdir /wheels . \
 && python -m pip wheel --no-cache-dir --wheel-dir /wheels /wheels/rds_csi-*.whl

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
 && rm -rf /var/lib/apt/lists/*

RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels rds-csi

RUN groupadd --system --gid 10001 rds-csi \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin rds-csi

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
ENTRYPOINT ["rds-csi"]
CMD ["--help"]
