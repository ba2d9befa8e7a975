"""A /28 holds 13 pods; the 14th gets the reference's message, STATUS says 50 while the
range is full, and GC after "forgetting" 5 pods frees exactly those 5."""

from __future__ import annotations

from tests.plugins.host_local._helpers import netconf, reservations, run

EXHAUSTED = (
    "failed to allocate for range 0: no IP addresses available in range set: 10.1.2.1-10.1.2.14"
)


def test_exhaustion_status_and_gc(ours, reference, tmp_path):
    conf = netconf(tmp_path, version="1.1.0", ranges=[[{"subnet": "10.1.2.0/28"}]])
    net = tmp_path / "net1"
    pods = [f"pod-{i:02d}" for i in range(13)]
    for cid in pods:
        out = run(ours, "ADD", conf, cid=cid)
        assert out.code == 0, out.stdout
    assert sorted(reservations(net), key=lambda a: int(a.split(".")[-1])) == [
        f"10.1.2.{i}" for i in range(2, 15)
    ]

    full = run(ours, "ADD", conf, cid="pod-13")
    assert (full.code, full.json["code"], full.json["msg"]) == (1, 999, EXHAUSTED)
    # the reference says the same (it speaks 1.0.0 at most)
    theirs = run(reference, "ADD", {**conf, "cniVersion": "1.0.0"}, cid="pod-13")
    assert theirs.json["msg"] == EXHAUSTED

    status = run(ours, "STATUS", conf, cid="", ifname="", netns="")
    assert (status.code, status.json["code"]) == (1, 50)
    assert "10.1.2.1-10.1.2.14" in status.json["msg"]

    forgotten = pods[3:8]
    kept = [cid for cid in pods if cid not in forgotten]
    valid = [{"containerID": cid, "ifname": "eth0"} for cid in kept]
    before = reservations(net)
    gc = run(ours, "GC", {**conf, "cni.dev/valid-attachments": valid}, cid="", ifname="")
    assert (gc.code, gc.stdout) == (0, b"")
    after = reservations(net)
    freed = {address: owner for address, owner in before.items() if address not in after}
    assert sorted(owner.split(b"\r\n")[0].decode() for owner in freed.values()) == forgotten
    assert len(after) == 8

    assert run(ours, "STATUS", conf, cid="", ifname="", netns="").code == 0
    assert run(ours, "ADD", conf, cid="pod-13").code == 0


def test_gc_with_legacy_key_and_legacy_files(ours, tmp_path):
    conf = netconf(tmp_path, version="1.1.0")
    net = tmp_path / "net1"
    for cid in ("a", "b"):
        run(ours, "ADD", conf, cid=cid)
    run(ours, "ADD", conf, cid="a", ifname="net1")
    (net / "10.1.2.50").write_bytes(b"b")  # an ID-only file of pod b: b is still valid
    (net / "10.1.2.51").write_bytes(b"c")  # ... of pod c: gone
    (net / ".tmp-crashed").write_bytes(b"x\r\neth0")  # debris of a crash
    attachments = [{"containerID": "a", "ifname": "eth0"}, {"containerID": "b", "ifname": "eth0"}]
    out = run(ours, "GC", {**conf, "cni.dev/attachments": attachments}, cid="", ifname="")
    assert out.code == 0, out.stdout
    assert reservations(net) == {
        "10.1.2.2": b"a\r\neth0",
        "10.1.2.3": b"b\r\neth0",
        "10.1.2.50": b"b",
    }
    assert not (net / ".tmp-crashed").exists()
