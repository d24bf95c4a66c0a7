"""``python -m rds_csi.emulator``: the same as ``rds-csi emulator``."""

import sys

from rds_csi.emulator.cli import main


sys.exit(main(sys.argv[1:]))
