"""A VTEP MAC that survives restarts.

Other nodes' neighbour and FDB entries name this node's VTEP by MAC. If a restart picked a
new random MAC (flannel before v0.24.1), every peer would drop traffic to this node until it
had seen the new annotation. flannel now reads the old MAC back from its node annotation;
podnet derives it from the node name and VNI, so it is the same after a restart, a lost
annotation or a rebuilt node, and distinct per node with overwhelming odds (46 random bits).
"""

from __future__ import annotations

import hashlib


def vtep_mac(node: str, vni: int, *, family: int = 4) -> str:
    """A locally administered unicast MAC derived from (node, vni), and the family for the
    IPv6 device (flannel-v6.<VNI> has its own MAC, as flannel's)."""
    seed = f"podnet-vtep/{node}/{vni}" + ("" if family == 4 else f"/v{family}")
    digest = bytearray(hashlib.sha256(seed.encode()).digest()[:6])
    digest[0] = (digest[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{byte:02x}" for byte in digest)
