"""64 ADDs at once from separate processes, ours and the reference mixed, on one /24:
the shared flock makes every address go to exactly one pod."""

from __future__ import annotations

from tests.plugins.host_local._helpers import Outcome, netconf, reservations, start


def test_64_concurrent_adds_mixed(ours, reference, tmp_path):
    conf = netconf(tmp_path)
    procs = {}
    for i in range(64):
        exe = ours if i % 2 == 0 else reference
        procs[f"pod-{i:02d}"] = start(exe, "ADD", conf, cid=f"pod-{i:02d}")
    outcomes = {}
    for cid, proc in procs.items():
        stdout, _ = proc.communicate(timeout=120)
        outcomes[cid] = Outcome(proc.returncode, stdout)
    failed = {cid: o.stdout for cid, o in outcomes.items() if o.code != 0}
    assert failed == {}
    addresses = {cid: o.addresses()[0].split("/")[0] for cid, o in outcomes.items()}
    assert len(set(addresses.values())) == 64
    files = reservations(tmp_path / "net1")
    assert len(files) == 64
    # nothing lost: each file names the pod that got its address
    for cid, address in addresses.items():
        assert files[address] == f"{cid}\r\neth0".encode()
    assert not [p for p in (tmp_path / "net1").iterdir() if p.name.startswith(".tmp-")]
