"""Our host-local and the reference binary on one data dir: they see each other's
reservations, release each other's, and write the same bytes."""

from __future__ import annotations

import os
import stat

from tests.plugins.host_local._helpers import netconf, reservations, run

DUAL_STACK = [[{"subnet": "10.1.2.0/24"}], [{"subnet": "fd00:1::/120"}]]


def test_alternating_allocations_are_distinct_and_cross_released(ours, reference, tmp_path):
    conf = netconf(tmp_path, ranges=DUAL_STACK)  # 1.0.0: the reference knows no 1.1.0
    net = tmp_path / "net1"
    by_whom = {}
    for i in range(12):
        exe = ours if i % 2 == 0 else reference
        out = run(exe, "ADD", conf, cid=f"pod-{i}")
        assert out.code == 0, out.stdout
        by_whom[f"pod-{i}"] = (exe, out.addresses())
    addresses = [a for _, got in by_whom.values() for a in got]
    assert len(addresses) == len(set(addresses)) == 24
    # both follow the same round-robin from the shared last_reserved_ip files
    assert [got[0] for _, got in by_whom.values()] == [f"10.1.2.{i}/24" for i in range(2, 14)]

    # each side CHECKs and DELetes what the other allocated
    for cid, (exe, _) in by_whom.items():
        other = reference if exe == ours else ours
        assert run(other, "CHECK", conf, cid=cid).code == 0
        assert run(other, "DEL", conf, cid=cid, netns="").code == 0
    assert reservations(net) == {}


def test_files_are_byte_compatible(ours, reference, tmp_path):
    ours_dir, ref_dir = tmp_path / "ours", tmp_path / "ref"
    for exe, data_dir in ((ours, ours_dir), (reference, ref_dir)):
        conf = netconf(data_dir, ranges=DUAL_STACK)
        for cid, ifname in (("a1b2c3", "eth0"), ("d4e5f6", "net1")):
            assert run(exe, "ADD", conf, cid=cid, ifname=ifname).code == 0
    mine, theirs = ours_dir / "net1", ref_dir / "net1"
    assert sorted(os.listdir(mine)) == sorted(os.listdir(theirs))
    for name in os.listdir(theirs):
        assert (mine / name).read_bytes() == (theirs / name).read_bytes(), name
    assert (mine / "10.1.2.3").read_bytes() == b"d4e5f6\r\nnet1"
    assert (mine / "last_reserved_ip.1").read_bytes() == b"fd00:1::3"
    # the lock file as go-filemutex creates it: empty, 0750 before the umask
    assert (mine / "lock").read_bytes() == b""
    assert stat.S_IMODE((mine / "lock").stat().st_mode) == stat.S_IMODE(
        (theirs / "lock").stat().st_mode
    )
    # reservations 0600, as the reference since v1.2 (the Debian 1.1.1 binary writes 0644)
    assert stat.S_IMODE((mine / "10.1.2.2").stat().st_mode) == 0o600


def test_reference_releases_our_legacy_files_and_we_release_its(ours, reference, tmp_path):
    conf = netconf(tmp_path)
    net = tmp_path / "net1"
    (net).mkdir()
    (net / "10.1.2.50").write_bytes(b"old-pod")
    (net / "10.1.2.51").write_bytes(b"older-pod")
    assert run(reference, "DEL", conf, cid="old-pod").code == 0
    assert run(ours, "DEL", conf, cid="older-pod").code == 0
    assert reservations(net) == {}


def test_reference_refuses_the_duplicate_we_allocated(ours, reference, tmp_path):
    conf = netconf(tmp_path)
    assert run(ours, "ADD", conf, cid="a").code == 0
    out = run(reference, "ADD", conf, cid="a")
    assert out.code == 1
    assert "duplicate allocation is not allowed" in out.json["msg"]
