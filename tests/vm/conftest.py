"""
The e2e_nvme tier's host side: prepare the guest once per session, boot it per test.

The tier runs only when asked for (``-m e2e_nvme``, ``tox -e e2e-nvme``): it installs Debian
packages and boots qemu. It skips only when qemu cannot run at all (the tools are missing and
could not be installed); a missing /dev/kvm is no reason, the guest runs under TCG.
"""

from __future__ import annotations

import os

import pytest

from tests.vm.harness import GuestImage, HostToolsUnavailable, prepare


IN_GUEST = os.environ.get("RDS_CSI_VM_GUEST") == "1"
# tests/vm/guest runs only inside the guest, whose run reports each of its tests; on a host it
# is not even collected.
collect_ignore = [] if IN_GUEST else ["guest"]


@pytest.fixture(scope="session")
def guest_image(request: pytest.FixtureRequest) -> GuestImage:
    if IN_GUEST:
        pytest.skip("already inside the guest: no nested VMs")
    if "e2e_nvme" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("boots a qemu guest: select it with -m e2e_nvme (tox -e e2e-nvme)")
    try:
        return prepare()
    except HostToolsUnavailable as exc:
        pytest.skip(f"qemu cannot run here: {exc}")
