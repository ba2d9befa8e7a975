"""The node IPAM controller: every node gets a disjoint podCIDR from the cluster CIDR(s).

Shape of kube-controller-manager's range allocator, on the podnet store:

1. Resync: list the block claims, then the nodes (in that order: a claim listed first
   cannot belong to a node registered after the node listing). Build one CIDRSet per
   cluster CIDR, mark the service range and every node's podCIDRs and every valid claim
   as taken, and delete stale claims. A podCIDR outside the cluster CIDRs (after a
   --cluster-cidr change) is reported as a Warning event and skipped: kube-controller-
   manager exits on it, and keeps exiting on every restart.
2. Watch the nodes from the listing's revision. A node without podCIDRs is queued; one
   that was deleted has its blocks released and handed to nodes that were waiting.
3. Allocate: next free block per cluster CIDR, claimed with create-if-absent (see
   _claims.py for why claims), then written to the node by compare-and-swap on its
   resourceVersion. If the CAS loses, reread: node gone -> release; node got podCIDRs from
   another controller -> release ours, occupy theirs; otherwise retry on the new version.
4. No free block: the node waits and a `CIDRNotAvailable` Warning event is recorded; a
   released block wakes the waiting nodes in the order they arrived.

Any store error (unreachable, watch history compacted) ends the round; `run` waits a
moment and starts again from 1, which is always safe: the store is the source of truth.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from podnet.nodeipam._cidrset import CIDROutOfRange, CIDRRangeFull, CIDRSet, IPNetwork
from podnet.nodeipam._claims import (
    CLAIMS_PREFIX,
    Claim,
    claim_key,
    claim_value,
    decode_claim,
)
from podnet.nodeipam._config import NodeIPAMConfig
from podnet.store import (
    WARNING,
    Compacted,
    Conflict,
    EventRecorder,
    Invalid,
    Node,
    Nodes,
    NotFound,
    Store,
    StoreError,
    StoreUnavailable,
    Watch,
)

log = logging.getLogger("podnet.nodeipam")

COMPONENT = "cidrAllocator"
CIDR_NOT_AVAILABLE = "CIDRNotAvailable"
CIDR_ASSIGNMENT_FAILED = "CIDRAssignmentFailed"
POD_CIDR_OUT_OF_RANGE = "PodCIDROutOfRange"
_CAS_RETRIES = 5


@dataclass
class Counters:
    allocations: int = 0
    releases: int = 0
    cas_conflicts: int = 0
    claim_conflicts: int = 0
    resyncs: int = 0


class Controller:
    """Allocates podCIDRs to nodes; see the module docstring. Not thread-safe: one thread
    runs it (`run`, or `start` + `step` in tests); others may read `sets` and `waiting`."""

    def __init__(
        self,
        store: Store,
        config: NodeIPAMConfig,
        *,
        recorder: EventRecorder | None = None,
        retry_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.config = config
        self.nodes = Nodes(store)
        self.recorder = recorder or EventRecorder(store, COMPONENT)
        self.retry_seconds = retry_seconds
        self.counters = Counters()
        self.sets: list[CIDRSet] = self._new_sets()
        self._known: dict[str, Node] = {}
        self._claims: dict[IPNetwork, Claim] = {}
        self._owned: dict[tuple[str, str], set[IPNetwork]] = {}  # (name, uid) -> claimed
        self._pending: dict[str, None] = {}  # insertion-ordered set of names to allocate for
        self._waiting: dict[str, None] = {}  # tried, no free block; woken by a release
        self._reported: set[tuple[str, str]] = set()
        self._starved: set[str] = set()  # nodes whose CIDRNotAvailable event is recorded
        self._watch: Watch | None = None
        self._revision = 0

    # -- public state --------------------------------------------------------------------
    @property
    def waiting(self) -> list[str]:
        """Nodes without a podCIDR because no block is free, in the order they arrived."""
        return list(self._waiting)

    @property
    def pending(self) -> list[str]:
        return list(self._pending)

    # -- the loop ------------------------------------------------------------------------
    def run(self, stop: threading.Event, *, on_round: Callable[[], None] | None = None) -> None:
        """Serve until `stop` is set, starting over after store errors."""
        while not stop.is_set():
            try:
                self.start()
                while not stop.is_set():
                    self.step(timeout=0.2)
                    if on_round is not None:
                        on_round()
            except (StoreUnavailable, Compacted) as exc:
                log.warning("store: %s; starting over in %.1fs", exc, self.retry_seconds)
                stop.wait(self.retry_seconds)
            finally:
                self.close()

    def start(self) -> None:
        """Resync from the store and start watching nodes."""
        self.close()
        self.resync()
        self._watch = self.store.watch(self.nodes.prefix, from_revision=self._revision + 1)
        self.process()

    def step(self, timeout: float) -> int:
        """Apply the node changes that arrive within `timeout`, then allocate; returns how
        many changes were applied."""
        if self._watch is None:
            raise RuntimeError("Controller.step before start")
        events = self._watch.get(timeout)
        for event in events:
            try:
                change = self.nodes.change(event)
            except Invalid as exc:
                log.warning("ignoring unreadable node object %s: %s", event.key, exc)
                continue
            if change.node is None:
                self._on_deleted(change.name)
            else:
                self._on_node(change.node)
            self._revision = event.revision
        self.process()
        return len(events)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    # -- resync --------------------------------------------------------------------------
    def resync(self) -> None:
        self.counters.resyncs += 1
        claims = [c for kv in self.store.list(CLAIMS_PREFIX).items if (c := decode_claim(kv))]
        listing = self.store.list(self.nodes.prefix)
        revision = self._revision = listing.revision
        nodes = []
        for kv in listing.items:
            try:
                nodes.append(self.nodes.decode(kv))
            except Invalid as exc:
                log.warning("ignoring unreadable node object %s: %s", kv.key, exc)
        self.sets = self._new_sets()
        self._known = {node.name: node for node in nodes}
        self._claims, self._owned = {}, {}
        self._pending, self._waiting = {}, {}
        for node in nodes:
            if node.pod_cidrs:
                self._occupy_node(node)
        for claim in claims:
            owner = self._known.get(claim.node)
            if claim.valid_for(owner):
                self._add_claim(claim)
                self._occupy(claim.cidr)
            else:
                self.store.delete(claim_key(claim.cidr), revision=claim.revision)
        unassigned = [n for n in nodes if not n.pod_cidrs]
        for node in sorted(unassigned, key=lambda n: (n.creation_timestamp, n.name)):
            self._pending[node.name] = None
        self._starved &= {node.name for node in unassigned}
        log.info(
            "resync at revision %d: %d nodes, %d without a podCIDR",
            revision, len(nodes), len(self._pending),
        )  # fmt: skip

    def _new_sets(self) -> list[CIDRSet]:
        return new_cidr_sets(self.config)

    # -- watch events ------------------------------------------------------------------------
    def _on_node(self, node: Node) -> None:
        previous = self._known.get(node.name)
        self._known[node.name] = node
        if previous is not None and previous.uid != node.uid:
            self._forget(previous)  # deleted and registered again between two events
        if node.pod_cidrs:
            self._pending.pop(node.name, None)
            self._waiting.pop(node.name, None)
            self._starved.discard(node.name)
            self._occupy_node(node)
        elif node.name not in self._waiting:
            self._pending[node.name] = None

    def _on_deleted(self, name: str) -> None:
        node = self._known.pop(name, None)
        self._pending.pop(name, None)
        self._waiting.pop(name, None)
        self._starved.discard(name)
        if node is not None:
            self._forget(node)

    def _forget(self, node: Node) -> None:
        """Release the blocks of a node that is gone, and drop its claims."""
        released = False
        for text in node.pod_cidrs:
            cidr = _parse(text)
            if cidr is not None and self._release(cidr):
                released = True
        for cidr in list(self._owned.get((node.name, node.uid), ())):
            self._drop_claim(self._claims[cidr])
            released = self._release(cidr) or released
        # Claims this controller never saw (written by another one) are checked in the store.
        for text in node.pod_cidrs:
            cidr = _parse(text)
            if cidr is None or cidr in self._claims:
                continue
            kv = self.store.get(claim_key(cidr))
            claim = decode_claim(kv) if kv else None
            if claim is not None and claim.node == node.name and claim.uid == node.uid:
                self.store.delete(claim_key(cidr), revision=claim.revision)
        if released:
            self.counters.releases += 1
            self._wake_waiting()

    def _wake_waiting(self) -> None:
        for name in self._waiting:
            self._pending[name] = None
        self._waiting = {}

    # -- allocation -------------------------------------------------------------------------
    def process(self) -> None:
        """Allocate for every pending node, in arrival order."""
        while self._pending:
            name = next(iter(self._pending))
            del self._pending[name]
            node = self._known.get(name)
            if node is None or node.pod_cidrs:
                continue
            self._allocate(node)

    def _allocate(self, node: Node) -> None:
        cidrs: list[IPNetwork] = []
        taken_now: list[IPNetwork] = []  # claimed in this call: undone if we cannot finish
        for cidr_set in self.sets:
            cidr = self._own_claim(node, cidr_set)
            if cidr is None:
                try:
                    cidr = self._claim_next(node, cidr_set)
                except CIDRRangeFull:
                    for done in taken_now:  # our own, just taken: nobody waits for them
                        self._unclaim(done, wake=False)
                    self._starve(node)
                    return
                taken_now.append(cidr)
            cidrs.append(cidr)
        self._write(node, cidrs)

    def _own_claim(self, node: Node, cidr_set: CIDRSet) -> IPNetwork | None:
        """A block already claimed for this node (by us or a controller that died)."""
        for cidr in self._owned.get((node.name, node.uid), ()):
            if cidr_set.contains(cidr):
                return cidr
        return None

    def _claim_next(self, node: Node, cidr_set: CIDRSet) -> IPNetwork:
        """The next free block, claimed in the store for `node`; CIDRRangeFull if none."""
        while True:
            cidr = cidr_set.allocate_next()
            created = self.store.create(claim_key(cidr), claim_value(node))
            if created is not None:
                self._add_claim(Claim(cidr, node.name, node.uid, created.mod_revision))
                return cidr
            # Someone claimed it first. It stays taken in our set unless the claim is stale.
            self.counters.claim_conflicts += 1
            kv = self.store.get(claim_key(cidr))
            claim = decode_claim(kv) if kv else None
            if claim is None:
                cidr_set.release(cidr)  # deleted meanwhile: free again, try it once more
                continue
            if claim.node == node.name and claim.uid == node.uid:
                self._add_claim(claim)  # ours already, from an earlier attempt
                return cidr
            owner = self.nodes.get(claim.node)  # a fresh read: our view may lag
            if claim.valid_for(owner):
                self._add_claim(claim)
            elif self.store.delete(claim_key(cidr), revision=claim.revision):
                cidr_set.release(cidr)  # stale: removed, so it is free for the next round

    def _write(self, node: Node, cidrs: list[IPNetwork]) -> None:
        texts = [str(c) for c in cidrs]
        current = node
        for _ in range(_CAS_RETRIES):
            try:
                written = self.nodes.update(current.with_pod_cidrs(texts), base=current)
            except (Conflict, NotFound):
                self.counters.cas_conflicts += 1
                fresh = self.nodes.get(node.name)
                if fresh is None or fresh.uid != node.uid:
                    for cidr in cidrs:
                        self._unclaim(cidr)
                    return
                if fresh.pod_cidrs:
                    if list(fresh.pod_cidrs) != texts:  # another controller won: theirs stand
                        for cidr in cidrs:
                            self._unclaim(cidr)
                    self._on_node(fresh)
                    return
                current = fresh
                continue
            except Invalid as exc:
                self._record(node, CIDR_ASSIGNMENT_FAILED, f"Node {node.name}: {exc}")
                for cidr in cidrs:
                    self._unclaim(cidr)
                return
            self._known[node.name] = written
            self.counters.allocations += 1
            log.info("node %s: podCIDRs %s", node.name, ",".join(texts))
            return
        self._pending[node.name] = None  # kept losing to other writers: try again later

    def _starve(self, node: Node) -> None:
        self._waiting[node.name] = None
        if node.name not in self._starved:  # one event per wait, not one per retry
            self._starved.add(node.name)
            message = f"Node {node.name} status is now: {CIDR_NOT_AVAILABLE}"
            self._record(node, CIDR_NOT_AVAILABLE, message)

    # -- set and claim bookkeeping ------------------------------------------------------
    def _occupy_node(self, node: Node) -> None:
        for text in node.pod_cidrs:
            cidr = _parse(text)
            if cidr is None or not self._occupy(cidr):
                self._report_out_of_range(node, text)

    def _occupy(self, cidr: IPNetwork) -> bool:
        """Mark `cidr` taken in the set of its family; False if it lies outside them all."""
        for cidr_set in self.sets:
            if cidr_set.contains(cidr):
                cidr_set.occupy(cidr)
                return True
        return False

    def _release(self, cidr: IPNetwork) -> bool:
        for cidr_set in self.sets:
            if cidr_set.contains(cidr):
                if any(
                    cidr.overlaps(s) for s in self.config.service_cidrs if s.version == cidr.version
                ):
                    return False  # never hand out blocks of the service range
                cidr_set.release(cidr)
                return True
        return False

    def _unclaim(self, cidr: IPNetwork, *, wake: bool = True) -> None:
        claim = self._claims.get(cidr)
        if claim is not None:
            self._drop_claim(claim)
        if self._release(cidr) and wake:
            self._wake_waiting()

    def _add_claim(self, claim: Claim) -> None:
        self._claims[claim.cidr] = claim
        self._owned.setdefault((claim.node, claim.uid), set()).add(claim.cidr)

    def _drop_claim(self, claim: Claim) -> None:
        self._claims.pop(claim.cidr, None)
        owned = self._owned.get((claim.node, claim.uid))
        if owned is not None:
            owned.discard(claim.cidr)
            if not owned:
                del self._owned[(claim.node, claim.uid)]
        self.store.delete(claim_key(claim.cidr), revision=claim.revision)

    def _report_out_of_range(self, node: Node, text: str) -> None:
        if (node.name, text) in self._reported:
            return
        self._reported.add((node.name, text))
        clusters = ",".join(str(c) for c in self.config.cluster_cidrs)
        message = (
            f"Node {node.name} has podCIDR {text} outside the cluster CIDR {clusters}; "
            "it is left as is and not tracked (delete and re-register the node to move it)"
        )
        log.warning("%s", message)
        self._record(node, POD_CIDR_OUT_OF_RANGE, message)

    def _record(self, node: Node, reason: str, message: str) -> None:
        try:
            self.recorder.record(
                kind="Node", name=node.name, uid=node.uid, type=WARNING, reason=reason,
                message=message,
            )  # fmt: skip
        except StoreUnavailable:
            raise
        except StoreError as exc:  # an event is not worth stopping for
            log.warning("could not record event %s for %s: %s", reason, node.name, exc)


def new_cidr_sets(config: NodeIPAMConfig) -> list[CIDRSet]:
    """One CIDRSet per cluster CIDR, with the service range(s) taken."""
    sets = [
        CIDRSet(cidr, mask)
        for cidr, mask in zip(config.cluster_cidrs, config.node_mask_sizes, strict=True)
    ]
    for service in config.service_cidrs:
        for cidr_set in sets:
            try:
                cidr_set.occupy(service)
            except CIDROutOfRange:
                pass  # the service range does not overlap this cluster CIDR
    return sets


def _parse(text: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
