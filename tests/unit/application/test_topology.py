"""Topology segments: the CSI key and value rules, and which requisites this RDS serves."""

from __future__ import annotations

import pytest

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.application.locks import KeyedLocks
from rds_csi.application.provisioning import CreateVolume
from rds_csi.application.topology import CreateVolumeInTopology, Topology
from rds_csi.domain import (
    CapacityExhausted,
    CapacityRange,
    InvalidArgument,
    VolumeCapability,
    VolumeParameters,
)


KEY = "topology.rds.csi.srvlab.io/rds"


def test_parse_keeps_valid_segments_sorted() -> None:
    topo = Topology.parse([f"{KEY}=rds-1", "topology.rds.csi.srvlab.io/zone=a"])
    assert topo.enabled
    assert topo.as_dict() == {KEY: "rds-1", "topology.rds.csi.srvlab.io/zone": "a"}


def test_empty_is_disabled() -> None:
    assert not Topology.parse([]).enabled


@pytest.mark.parametrize(
    "pair",
    [
        "no-equals-sign",
        "Upper.Case/name=a",  # the prefix is a lowercase DNS name
        "prefix/-name=a",  # names start and end alphanumeric
        f"prefix/{'n' * 64}=a",  # at most 63
        "zone=",  # values follow the name rules
        "zone=a b",
        "zone=a;rm",
    ],
)
def test_invalid_pairs_are_refused(pair: str) -> None:
    with pytest.raises(InvalidArgument):
        Topology.parse([pair])


def test_keys_are_case_insensitive_and_unique() -> None:
    with pytest.raises(InvalidArgument, match="twice"):
        Topology.parse(["zone=a", "ZONE=b"])


def test_keys_share_one_prefix() -> None:
    with pytest.raises(InvalidArgument, match="one prefix"):
        Topology.parse(["a.io/zone=a", "b.io/rack=r"])


def test_admits_when_any_requisite_matches_or_leaves_our_keys_out() -> None:
    topo = Topology.parse([f"{KEY}=rds1"])
    assert topo.admits([])
    assert topo.admits([{KEY: "rds2"}, {KEY: "rds1"}])
    assert topo.admits([{KEY.upper(): "rds1"}])
    assert topo.admits([{"kubernetes.io/hostname": "n1"}])
    assert not topo.admits([{KEY: "rds2"}])
    assert Topology().admits([{KEY: "anything"}])


def test_create_refuses_a_requisite_elsewhere_before_touching_the_rds() -> None:
    rds = InMemoryRds()
    create = CreateVolumeInTopology(
        CreateVolume(rds, KeyedLocks(), VolumeParameters(rds_address="10.0.0.1")),
        Topology.parse([f"{KEY}=rds1"]),
    )
    caps = [VolumeCapability.mount()]
    with pytest.raises(CapacityExhausted):
        create("pvc-a", CapacityRange(), caps, {}, [{KEY: "rds2"}])
    assert rds.calls == []
    assert create("pvc-a", CapacityRange(), caps, {}, [{KEY: "rds1"}]).volume.size.bytes > 0
