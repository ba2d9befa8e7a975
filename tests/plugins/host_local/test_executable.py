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


def test_check_compares_the_addresses_of_prev_result(ours, tmp_path):
    conf = netconf(tmp_path, ranges=DUAL_STACK)
    first = run(ours, "ADD", conf, cid="pod-a").json
    second = run(ours, "ADD", conf, cid="pod-b").json
    assert run(ours, "CHECK", {**conf, "prevResult": first}, cid="pod-a").code == 0
    # pod-a's reservation exists, but prevResult says pod-b's addresses
    wrong = run(ours, "CHECK", {**conf, "prevResult": second}, cid="pod-a")
    assert wrong.code == 1
    assert "holds 10.1.2.2 in range set 0 but prevResult has 10.1.2.3" in wrong.json["msg"]
    # no reservation at all for this attachment
    missing = run(ours, "CHECK", {**conf, "prevResult": first}, cid="pod-a", ifname="eth1")
    assert missing.json["msg"] == "host-local: Failed to find address added by container pod-a"
    # without prevResult: the reservation must exist in every set
    (tmp_path / "net1" / "fd00:1::2").unlink()
    half = run(ours, "CHECK", conf, cid="pod-a")
    assert "holds no address in range set 1" in half.json["msg"]


def test_del_without_netns_and_on_a_fresh_data_dir(ours, tmp_path):
    conf = netconf(tmp_path / "never-used")
    out = run(ours, "DEL", conf, cid="pod-a", netns="")
    assert (out.code, out.stdout) == (0, b"")
    assert not (tmp_path / "never-used").exists()  # DEL creates nothing
    conf = netconf(tmp_path)
    assert run(ours, "ADD", conf, cid="pod-a").code == 0
    out = run(ours, "DEL", conf, cid="pod-a", netns="/var/run/netns/pn-gone-long-ago")
    assert (out.code, reservations(tmp_path / "net1")) == (0, {})


def test_del_releases_only_its_interface_and_legacy_files(ours, tmp_path):
    conf = netconf(tmp_path)
    net = tmp_path / "net1"
    run(ours, "ADD", conf, cid="pod-a", ifname="eth0")
    run(ours, "ADD", conf, cid="pod-a", ifname="net1")
    (net / "10.1.2.100").write_bytes(b"pod-old")  # written by host-local before ifname
    run(ours, "DEL", conf, cid="pod-a", ifname="net1")
    assert reservations(net) == {"10.1.2.2": b"pod-a\r\neth0", "10.1.2.100": b"pod-old"}
    run(ours, "DEL", conf, cid="pod-old", ifname="eth0")
    assert reservations(net) == {"10.1.2.2": b"pod-a\r\neth0"}


def test_round_robin_continues_after_release(ours, tmp_path):
    conf = netconf(tmp_path, ranges=[[{"subnet": "10.1.2.0/29"}]])
    got = []
    for i in range(4):
        got += run(ours, "ADD", conf, cid=f"p{i}").addresses()
        if i == 0:
            run(ours, "DEL", conf, cid="p0")  # .2 is free again, but not next
    assert got == ["10.1.2.2/29", "10.1.2.3/29", "10.1.2.4/29", "10.1.2.5/29"]
    assert (tmp_path / "net1" / "last_reserved_ip.0").read_bytes() == b"10.1.2.5"


def test_requested_addresses(ours, tmp_path):
    conf = netconf(tmp_path, ranges=DUAL_STACK)
    by_env = run(ours, "ADD", conf, cid="a", cni_args="IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.2.77")
    assert by_env.addresses() == ["10.1.2.77/24", "fd00:1::2/120"]
    by_args = run(ours, "ADD", {**conf, "args": {"cni": {"ips": ["fd00:1::99"]}}}, cid="b")
    # a requested address also moves round-robin on, as in the reference
    assert by_args.addresses() == ["10.1.2.78/24", "fd00:1::99/120"]
    runtime = {"runtimeConfig": {"ips": ["10.1.2.90/24", "fd00:1::98/120"]}}
    by_runtime = run(ours, "ADD", {**conf, **runtime}, cid="c")
    assert by_runtime.addresses() == ["10.1.2.90/24", "fd00:1::98/120"]
    taken = run(ours, "ADD", conf, cid="d", cni_args="IP=10.1.2.77")
    assert taken.json["msg"] == (
        "failed to allocate for range 0: requested IP address 10.1.2.77 is not available "
        "in range set 10.1.2.1-10.1.2.254"
    )


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


def test_rollback_of_earlier_sets_keeps_older_reservations(ours, tmp_path):
    conf = netconf(
        tmp_path,
        ranges=[[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/30"}]],
    )
    net = tmp_path / "net1"
    assert run(ours, "ADD", conf, cid="a").code == 0  # takes 10.1.3.2, the only one
    before = reservations(net)
    out = run(ours, "ADD", conf, cid="b")
    assert out.json["msg"] == (
        "failed to allocate for range 1: no IP addresses available in range set: 10.1.3.1-10.1.3.2"
    )
    assert reservations(net) == before  # b's 10.1.2.3 was released again


def test_duplicate_allocation_is_refused(ours, tmp_path):
    conf = netconf(tmp_path)
    run(ours, "ADD", conf, cid="a")
    before = reservations(tmp_path / "net1")
    out = run(ours, "ADD", conf, cid="a")
    assert out.json["msg"] == (
        "failed to allocate for range 0: 10.1.2.2 has been allocated to a, "
        "duplicate allocation is not allowed"
    )
    assert reservations(tmp_path / "net1") == before
