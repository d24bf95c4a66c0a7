"""The ``node`` fixture for every node use-case test."""

from tests.unit.application.node.world import node


__all__ = ["node"]
