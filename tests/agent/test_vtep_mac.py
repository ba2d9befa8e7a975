from __future__ import annotations

from podnet.agent import vtep_mac


def test_stable_per_node_and_vni() -> None:
    assert vtep_mac("n1", 1) == vtep_mac("n1", 1)
    assert len({vtep_mac(f"n{i}", 1) for i in range(1000)}) == 1000
    assert vtep_mac("n1", 1) != vtep_mac("n1", 2)


def test_locally_administered_unicast() -> None:
    for i in range(200):
        first = int(vtep_mac(f"node-{i}", 1)[:2], 16)
        assert first & 0x01 == 0, "unicast"
        assert first & 0x02 == 0x02, "locally administered"
