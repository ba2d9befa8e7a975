"""host-local through the executable install-cni writes, with a real environment and
stdin, for every CNI version a runtime may speak."""

from __future__ import annotations

import pytest

from podnet.cni import ALL_VERSIONS, at_least
from tests.plugins.host_local._helpers import netconf, reservations, run

DUAL_STACK = [[{"subnet": "10.1.2.0/24"}], [{"subnet": "fd00:1::/120"}]]


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_every_verb_for_every_version(ours, tmp_path, version):
    conf = netconf(tmp_path, version=version, ranges=DUAL_STACK, routes=[{"dst": "0.0.0.0/0"}])
    net = tmp_path / "net1"

    added = run(ours, "ADD", conf, cid="pod-a")
    assert added.code == 0, added.stdout
    result = added.json
    assert result["cniVersion"] == version
    if at_least(version, "0.3.0"):
        assert [ip["address"] for ip in result["ips"]] == ["10.1.2.2/24", "fd00:1::2/120"]
        assert [ip["gateway"] for ip in result["ips"]] == ["10.1.2.1", "fd00:1::1"]
        assert result["routes"] == [{"dst": "0.0.0.0/0"}]
        with_version = "version" in result["ips"][0]
        assert with_version is (not at_least(version, "1.0.0"))
    else:  # 0.1.0, 0.2.0: one ip4 and one ip6 object
        assert result["ip4"] == {
            "ip": "10.1.2.2/24",
            "gateway": "10.1.2.1",
            "routes": [{"dst": "0.0.0.0/0"}],
        }
        assert result["ip6"] == {"ip": "fd00:1::2/120", "gateway": "fd00:1::1"}
    assert reservations(net) == {"10.1.2.2": b"pod-a\r\neth0", "fd00:1::2": b"pod-a\r\neth0"}

    checked = run(ours, "CHECK", {**conf, "prevResult": result}, cid="pod-a")
    if at_least(version, "0.4.0"):
        assert checked.code == 0, checked.stdout
    else:
        assert (checked.code, checked.json["code"]) == (1, 1)

    for verb in ("GC", "STATUS"):
        extra = {"cni.dev/valid-attachments": [{"containerID": "pod-a", "ifname": "eth0"}]}
        outcome = run(ours, verb, {**conf, **extra}, cid="", ifname="", netns="")
        if at_least(version, "1.1.0"):
            assert (outcome.code, outcome.stdout) == (0, b"")
        else:
            assert (outcome.code, outcome.json["code"]) == (1, 1)
    assert len(reservations(net)) == 2  # GC kept the valid attachment

    deleted = run(ours, "DEL", conf, cid="pod-a", netns="")
    assert (deleted.code, deleted.stdout) == (0, b"")
    assert reservations(net) == {}
    again = run(ours, "DEL", conf, cid="pod-a", netns="")
    assert again.code == 0  # DEL is idempotent


def test_version_command(ours):
    out = run(ours, "VERSION", {"cniVersion": "1.1.0"}, cid="", ifname="", netns="")
    assert out.code == 0
    assert out.json == {"cniVersion": "1.1.0", "supportedVersions": list(ALL_VERSIONS)}


def test_del_without_netns_and_on_a_fresh_data_dir(ours, tmp_path):
    conf = netconf(tmp_path / "never-used")
    out = run(ours, "DEL", conf, cid="pod-a", netns="")
    assert (out.code, out.stdout) == (0, b"")
    assert not (tmp_path / "never-used").exists()  # DEL creates nothing
    conf = netconf(tmp_path)
    assert run(ours, "ADD", conf, cid="pod-a").code == 0
    out = run(ours, "DEL", conf, cid="pod-a", netns="/var/run/netns/pn-gone-long-ago")
    assert (out.code, reservations(tmp_path / "net1")) == (0, {})


def test_ip_ranges_capability_and_legacy_range(ours, tmp_path):
    conf = netconf(
        tmp_path,
        ranges=[[{"subnet": "fd00:1::/120"}]],
        subnet="10.9.0.0/24",
        rangeStart="10.9.0.50",
        gateway="10.9.0.254",
        resolvConf=str(tmp_path / "resolv.conf"),
    )
    (tmp_path / "resolv.conf").write_text(
        "# comment\nnameserver 10.96.0.10\nsearch a.svc b.svc\noptions ndots:5\ndomain x\n"
    )
    conf["runtimeConfig"] = {"ipRanges": [[{"subnet": "10.7.0.0/24"}]]}
    out = run(ours, "ADD", conf, cid="a").json
    assert [(ip["address"], ip["gateway"]) for ip in out["ips"]] == [
        ("10.7.0.2/24", "10.7.0.1"),
        ("10.9.0.50/24", "10.9.0.254"),
        ("fd00:1::2/120", "fd00:1::1"),
    ]
    assert out["dns"] == {
        "nameservers": ["10.96.0.10"],
        "domain": "x",
        "search": ["a.svc", "b.svc"],
        "options": ["ndots:5"],
    }
