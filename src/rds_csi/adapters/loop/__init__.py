"""The loop initiator (``initiator: loop``): the emulator's disk images attached with losetup."""

from rds_csi.adapters.loop.initiator import LoopInitiator


__all__ = ["LoopInitiator"]
