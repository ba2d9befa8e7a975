from __future__ import annotations

import subprocess
import uuid

import pytest

from podnet.netlink import NetnsError, bring_up_loopback, create_netns, delete_netns

pytestmark = pytest.mark.root


def lo_flags(path: str) -> str:
    out = subprocess.run(
        ["nsenter", f"--net={path}", "ip", "-o", "link", "show", "lo"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split("<", 1)[1].split(">", 1)[0]


def test_bring_up_loopback(tmp_path) -> None:
    path = str(tmp_path / f"pn-{uuid.uuid4().hex[:8]}")
    create_netns(path)
    try:
        assert "UP" not in lo_flags(path).split(",")
        bring_up_loopback(path)
        assert "UP" in lo_flags(path).split(",")
        bring_up_loopback(path)  # already up: fine
    finally:
        delete_netns(path)
    with pytest.raises(NetnsError):
        bring_up_loopback(path)
