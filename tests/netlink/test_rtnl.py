"""The rtnetlink handle without a kernel: dump retries, error mapping."""

from __future__ import annotations

import errno
import ipaddress
import socket
import subprocess
import sys
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkDumpInterrupted
from pyroute2.netlink.exceptions import NetlinkError as PyrouteNetlinkError

from podnet.netlink import (
    LinkNotFound,
    NetlinkError,
    NetnsError,
    Rtnl,
    add_address,
    add_route,
    list_routes,
    open_rtnl,
    set_link,
)
from podnet.netlink._nlmsg import NLM_F_DUMP_INTR
from podnet.netlink._rtnl import netlink_errors


def message(flags: int) -> dict[str, Any]:
    return {"header": {"flags": flags}}


class FakeIPRoute:
    """Answers `link("dump")` with interrupted dumps a given number of times."""

    def __init__(self, interrupted: int) -> None:
        self.interrupted = interrupted
        self.calls = 0

    def link(self, command: str, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls += 1
        if self.calls <= self.interrupted:
            return [message(2), message(2 | NLM_F_DUMP_INTR)]
        return [message(2), message(2)]

    def close(self) -> None:
        pass


@pytest.mark.parametrize("interrupted", [0, 1, 5])
def test_interrupted_dumps_are_repeated(interrupted: int) -> None:
    fake = FakeIPRoute(interrupted)
    assert len(Rtnl(fake, "").dump("list links", "link")) == 2
    assert fake.calls == interrupted + 1


def test_a_dump_that_never_settles_is_an_error() -> None:
    with pytest.raises(NetlinkError) as info:
        Rtnl(FakeIPRoute(100), "").dump("list links", "link")
    assert info.value.errno == errno.EINTR


@pytest.mark.parametrize(
    ("raised", "expected", "code"),
    [
        (PyrouteNetlinkError(errno.ENODEV), LinkNotFound, errno.ENODEV),
        (PyrouteNetlinkError(errno.EEXIST), NetlinkError, errno.EEXIST),
        (PyrouteNetlinkError(errno.EPERM, "not permitted"), NetlinkError, errno.EPERM),
        (NetlinkDumpInterrupted(), NetlinkError, errno.EIO),
    ],
)
def test_pyroute2_errors_become_podnet_errors(
    raised: Exception, expected: type[NetlinkError], code: int
) -> None:
    with pytest.raises(NetlinkError) as info, netlink_errors("doing it"):
        raise raised
    assert type(info.value) is expected
    assert info.value.errno == code
    assert "doing it" in str(info.value)
    assert info.value.__cause__ is raised


@pytest.mark.root
def test_open_missing_netns(tmp_path: Any) -> None:
    with pytest.raises(NetnsError) as info:
        open_rtnl(str(tmp_path / "missing"))
    assert info.value.errno == errno.ENOENT


@pytest.mark.root
def test_pod_operations_do_not_import_pyroute2(netns_pair: tuple[str, str]) -> None:
    """What a pod's ADD needs from netlink runs without pyroute2 (~120 ms to import)."""
    node, _ = netns_pair
    script = f"""
import sys
from podnet.cni import Host
from podnet.netlink import create_bridge, get_link, list_addresses, run_in_netns
def work():
    nl = Host().node_rtnl()
    create_bridge(nl, "cni0")
    assert get_link(nl, "cni0").kind == "bridge"
    assert list_addresses(nl) == []
run_in_netns({node!r}, work)
assert "pyroute2" not in sys.modules, sorted(m for m in sys.modules if "pyroute2" in m)[:3]
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.root
def test_routes_are_added_as_pyroute2_added_them(netns_pair: tuple[str, str]) -> None:
    """Same protocol (static), scope, table and metrics as the pyroute2 calls they replace."""
    _, pod = netns_pair
    with open_rtnl(pod) as nl:
        set_link(nl, 1, up=True)
        add_address(nl, 1, ipaddress.ip_interface("10.244.1.5/24"))
        gateway = ipaddress.ip_address("10.244.1.1")
        add_route(nl, ipaddress.ip_network("0.0.0.0/0"), oif=1, gateway=gateway)
        add_route(nl, ipaddress.ip_network("10.8.0.0/16"), oif=1, priority=5, table=100, mtu=1400)
        listed = {(r.dst, r.table): r for r in list_routes(nl, version=4, table=None)}
        via = nl.ipr.route("dump", family=socket.AF_INET)  # pyroute2 as the second opinion
        theirs = {
            (m.get_attr("RTA_DST"), m.get_attr("RTA_TABLE")): (m["proto"], m["scope"], m["type"])
            for m in via
        }
    assert theirs[(None, 254)] == (4, 0, 1)
    assert theirs[("10.8.0.0", 100)] == (4, 0, 1)
    default = listed[(ipaddress.ip_network("0.0.0.0/0"), 254)]
    assert (default.gateway, default.oif) == (gateway, 1)
    assert listed[(ipaddress.ip_network("10.8.0.0/16"), 100)].priority == 5
    shown = subprocess.run(
        ["nsenter", f"--net={pod}", "ip", "route", "show", "table", "100"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "proto static" in shown and "metric 5" in shown and "mtu 1400" in shown
