"""rds-csi: a CSI driver for MikroTik ROSE Data Server."""

__version__ = "0.1.0"
