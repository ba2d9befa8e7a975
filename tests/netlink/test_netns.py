from __future__ import annotations

import os
import uuid

import pytest

from podnet.netlink import (
    NetnsError,
    create_netns,
    delete_netns,
    is_netns,
    read_sysctl,
    write_sysctl,
)

pytestmark = pytest.mark.root


def test_create_enter_delete(tmp_path) -> None:
    path = str(tmp_path / f"pn-{uuid.uuid4().hex[:8]}")
    create_netns(path)
    try:
        assert is_netns(path)
        assert read_sysctl(path, "net.ipv4.ip_forward") == "0"
        write_sysctl(path, {"net.ipv4.ip_forward": 1})
        assert read_sysctl(path, "net.ipv4.ip_forward") == "1"
        with open("/proc/sys/net/ipv4/ip_forward") as handle:
            assert handle.read().strip() == "0", "the root namespace must stay untouched"
        with pytest.raises(FileExistsError):
            create_netns(path)
    finally:
        delete_netns(path)
    assert not os.path.exists(path)
    delete_netns(path)  # deleting twice is fine


def test_enter_missing_netns(tmp_path) -> None:
    with pytest.raises(NetnsError):
        read_sysctl(str(tmp_path / "nope"), "net.ipv4.ip_forward")
