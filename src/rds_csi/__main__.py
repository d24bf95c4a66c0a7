"""``python -m rds_csi``: the same as the ``rds-csi`` command."""

import sys

from rds_csi.entrypoints.cli import main


if __name__ == "__main__":
    sys.exit(main())
