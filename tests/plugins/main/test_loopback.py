"""The loopback plugin through its installed executable."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from podnet.netlink import get_link, open_rtnl
from tests.plugins.main._support import Cni, in_netns, with_prev

pytestmark = pytest.mark.root


def conf(version: str) -> dict[str, object]:
    return {"cniVersion": version, "name": "cni-loopback", "type": "loopback"}


def lo_up(netns: str) -> bool:
    with open_rtnl(netns) as nl:
        return get_link(nl, "lo").admin_up


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_add_check_del(cni: Cni, pod_netns: Callable[[], str], version: str) -> None:
    pod = pod_netns()
    assert not lo_up(pod)
    # CNI_IFNAME is ignored: loopback only ever configures lo
    outcome = cni.run("ADD", conf(version), netns=pod, ifname="eth0")
    assert outcome.ok, outcome.out
    assert lo_up(pod)
    assert outcome.out == {
        "cniVersion": version,
        "interfaces": [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": pod}],
        "ips": [
            {"interface": 0, "address": "127.0.0.1/8"}
            | ({"version": "4"} if version in ("0.3.1", "0.4.0") else {}),
            {"interface": 0, "address": "::1/128"}
            | ({"version": "6"} if version in ("0.3.1", "0.4.0") else {}),
        ],
        "dns": {},
    }
    if version != "0.3.1":
        assert cni.run("CHECK", with_prev(conf(version), outcome.out), netns=pod).ok
    assert cni.run("DEL", conf(version), netns=pod).ok
    assert not lo_up(pod)
    if version != "0.3.1":
        check = cni.run("CHECK", with_prev(conf(version), outcome.out), netns=pod)
        assert not check.ok and "loopback interface is down" in check.error


def test_chained_add_passes_prev_result_through(cni: Cni, pod_netns: Callable[[], str]) -> None:
    prev = {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0", "sandbox": "/x"}],
        "ips": [{"address": "10.244.1.5/24", "interface": 0}],
        "dns": {},
    }
    outcome = cni.run("ADD", with_prev(conf("1.0.0"), prev), netns=pod_netns())
    assert outcome.ok and outcome.out == prev


def test_non_loopback_address_on_lo_is_an_error(cni: Cni, pod_netns: Callable[[], str]) -> None:
    pod = pod_netns()
    in_netns(pod, "ip", "addr", "add", "10.244.1.9/32", "dev", "lo")
    outcome = cni.run("ADD", conf("1.0.0"), netns=pod)
    assert not outcome.ok
    assert 'loopback interface found with non-loopback address "10.244.1.9"' in outcome.error


def test_del_tolerates_missing_or_empty_netns(cni: Cni) -> None:
    assert cni.run("DEL", conf("1.0.0"), netns="/var/run/netns/pn-gone").ok
    assert cni.run("DEL", conf("1.0.0"), netns="").ok


def test_add_into_missing_netns_fails(cni: Cni) -> None:
    outcome = cni.run("ADD", conf("1.0.0"), netns="/var/run/netns/pn-gone")
    assert not outcome.ok and "pn-gone" in outcome.error


@pytest.mark.parametrize("command", ["ADD", "CHECK", "DEL"])
@pytest.mark.parametrize("kind", ["fifo", "mount-namespace"])
def test_a_netns_that_is_a_fifo_is_code_4(cni: Cni, tmp_path, command: str, kind: str) -> None:
    import os

    path = str(tmp_path / "not-a-netns")
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path = "/proc/self/ns/mnt"  # a namespace file, of the wrong kind
    outcome = cni.run(command, conf("1.0.0"), netns=path)
    assert outcome.code == 1
    assert outcome.out is not None and outcome.out["code"] == 4, outcome.out
    assert "is not a network namespace" in outcome.error
