"""Block claims: one key per handed-out node CIDR, created with create-if-absent before the
CIDR is written to a node.

Compare-and-swap on the node's revision stops two writers from changing one node, but not
two controllers from giving the same free block to two different nodes: each would CAS a
different node and both would succeed. The claim key is the arbiter: whoever creates
`/registry/podnet/podcidrs/10.244.3.0-24` owns that block (as flannel's subnet leases do).

A claim is valid while its owner (same name and uid) exists and either has no podCIDR yet
(the write is on its way) or has this CIDR. Any other claim is stale: the owner is gone,
or got another block, and podCIDR is immutable, so no write can still land on it.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from podnet.nodeipam._cidrset import IPNetwork
from podnet.store import KeyValue, Node

CLAIMS_PREFIX = "/registry/podnet/podcidrs/"


@dataclass(frozen=True)
class Claim:
    cidr: IPNetwork
    node: str
    uid: str
    revision: int

    def valid_for(self, owner: Node | None) -> bool:
        """Whether this claim still holds, given its owner as it is now (None: gone)."""
        if owner is None or owner.name != self.node or owner.uid != self.uid:
            return False
        return not owner.pod_cidrs or str(self.cidr) in owner.pod_cidrs


def claim_key(cidr: IPNetwork) -> str:
    return CLAIMS_PREFIX + str(cidr).replace("/", "-")


def claim_value(node: Node) -> bytes:
    return json.dumps({"node": node.name, "uid": node.uid}, separators=(",", ":")).encode()


def decode_claim(kv: KeyValue) -> Claim | None:
    """The claim a key holds; None for a key that is not a well-formed claim."""
    try:
        text = kv.key.removeprefix(CLAIMS_PREFIX)
        address, _, prefix = text.rpartition("-")
        cidr = ipaddress.ip_network(f"{address}/{prefix}")
        data = json.loads(kv.value)
        return Claim(cidr, str(data["node"]), str(data.get("uid", "")), kv.mod_revision)
    except (ValueError, KeyError, TypeError):
        return None
