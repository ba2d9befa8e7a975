"""The node IPAM controller through the Kubernetes API, as kube-controller-manager's range
allocator works (pkg/controller/nodeipam/ipam/range_allocator.go):

- A reflector lists and watches Nodes (_kubeclient.NodeReflector); its events and the
  outcomes of the patches come to one queue, which one thread (`run`) drains. That thread
  alone owns the CIDR sets, so they need no lock.
- A node with podCIDRs has them marked taken (a podCIDR outside the cluster CIDRs is
  reported once as a `PodCIDROutOfRange` event and left alone; KCM would exit). A node
  without is given the next free block of every cluster CIDR at once, in memory, and the
  patch is handed to a pool of workers (8; KCM's `cidrUpdateWorkers` are 30):
  `{"spec": {"podCIDR": first, "podCIDRs": all}}` as a strategic merge patch, exactly
  PatchNodeCIDRs. Allocating never waits for the API, so 5,000 new nodes are 5,000 patches
  in flight, not 5,000 round trips in a row.
- A patch that fails is retried (3 times, then a `CIDRAssignmentFailed` event, then again
  with back-off: its blocks stay taken, since the write may have landed). 404: the node
  is gone, its blocks are freed. 422: the node got podCIDRs from someone else (podCIDR is
  immutable): ours are freed and theirs taken.
- No free block: the node waits, one `CIDRNotAvailable` event is recorded, and a block
  freed by a deleted node wakes the waiting nodes in the order they came.
- A deleted node's blocks are freed (from its last state in the DELETED event).

Who holds a block is tracked by node UID, so a late answer for a node deleted and
registered again under the same name can never free a block someone else now holds.

Only one replica may allocate: with two, each would hand out the same next block to a
different node. `podnet nodeipam run` elects a leader through a Lease (_leader.py) and
runs this only while it leads, as kube-controller-manager does.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from lightkube import ApiError, Client
from lightkube.resources.core_v1 import Node
from lightkube.types import PatchType

from podnet.nodeipam._cidrset import CIDROutOfRange, CIDRRangeFull, CIDRSet, IPNetwork
from podnet.nodeipam._config import NodeIPAMConfig
from podnet.nodeipam._controller import Counters, new_cidr_sets
from podnet.nodeipam._kubeclient import NodeEvent, NodeReflector
from podnet.nodeipam._kubeevents import KubeEventRecorder

log = logging.getLogger("podnet.nodeipam")

CIDR_NOT_AVAILABLE = "CIDRNotAvailable"
CIDR_ASSIGNMENT_FAILED = "CIDRAssignmentFailed"
POD_CIDR_OUT_OF_RANGE = "PodCIDROutOfRange"
# KCM runs 30 (cidrUpdateWorkers). Against podnet's API server (Python, one sqlite writer
# at a time) 8 assigned a 1,000-node backlog 2-2.5 times faster than 30 (4.2-5.6 s against
# 10.7-12.0 s, 2026-12-02, load ~18): more only queue up inside the server.
CIDR_UPDATE_WORKERS = 8
CIDR_UPDATE_RETRIES = 3  # KCM's cidrUpdateRetries
_RETRY_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class _Known:
    uid: str
    pod_cidrs: tuple[str, ...]


@dataclass(frozen=True)
class _Outcome:
    """What became of a patch: done (the node as written), gone (404), taken (422: the
    node as it is now, or None if it vanished), stopped (not sent: shutting down)."""

    kind: str
    name: str
    uid: str
    cidrs: tuple[IPNetwork, ...]
    node: Node | None = None


def node_cidrs(node: Node) -> tuple[str, ...]:
    spec = node.spec
    if spec is None:
        return ()
    if spec.podCIDRs:
        return tuple(spec.podCIDRs)
    return (spec.podCIDR,) if spec.podCIDR else ()


def _name(node: Node) -> str:
    return str(node.metadata.name) if node.metadata else ""


def _uid(node: Node) -> str:
    return str(node.metadata.uid or "") if node.metadata else ""


def _created(node: Node) -> str:
    stamp = node.metadata.creationTimestamp if node.metadata else None
    return stamp.isoformat() if stamp is not None else ""


class KubeController:
    """See the module docstring. `run` serves until `stop` is set."""

    def __init__(
        self,
        client: Client,
        config: NodeIPAMConfig,
        *,
        recorder: KubeEventRecorder | None = None,
        workers: int = CIDR_UPDATE_WORKERS,
        retry_seconds: float = 1.0,
    ) -> None:
        self.client = client
        self.config = config
        self.recorder = recorder or KubeEventRecorder(client)
        self.workers = workers
        self.retry_seconds = retry_seconds
        self.counters = Counters()
        self.sets: list[CIDRSet] = new_cidr_sets(config)
        self.synced = threading.Event()  # set once the first listing is applied
        self._queue: queue.SimpleQueue[NodeEvent | _Outcome] = queue.SimpleQueue()
        self._known: dict[str, _Known] = {}
        self._holders: dict[IPNetwork, set[str]] = {}  # block -> UIDs holding it
        self._pending: dict[str, None] = {}  # insertion-ordered: nodes to allocate for
        self._waiting: dict[str, None] = {}  # no free block; woken by a release
        self._in_flight: dict[str, tuple[str, tuple[IPNetwork, ...]]] = {}
        self._starved: set[str] = set()  # nodes whose CIDRNotAvailable is recorded
        self._reported: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None

    # -- public state --------------------------------------------------------------------
    @property
    def waiting(self) -> list[str]:
        return list(self._waiting)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    # -- the loop --------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """List+watch Nodes and allocate until `stop` is set."""
        self._stop = stop
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="cidr-update")
        reflector = NodeReflector(self.client, self._queue.put, stop).start()
        try:
            while not stop.is_set():
                try:
                    item = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                self._handle(item)
                # Drain what else arrived before allocating, so a burst of registrations
                # is handled in one pass.
                while not stop.is_set():
                    try:
                        self._handle(self._queue.get_nowait())
                    except queue.Empty:
                        break
                self._process()
        finally:
            stop.set()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self.recorder.close()
            reflector.join(0.5)  # a daemon: a watch still open ends with the process

    def _handle(self, item: NodeEvent | _Outcome) -> None:
        if isinstance(item, _Outcome):
            self._on_outcome(item)
        elif item.type == "SYNC":
            self._on_sync(item.nodes)
        elif item.node is not None:
            if item.type == "DELETED":
                self._on_deleted(item.node)
            else:
                self._on_node(item.node)

    # -- node events ---------------------------------------------------------------------
    def _on_sync(self, nodes: tuple[Node, ...]) -> None:
        """A full listing: what vanished since was deleted, the rest is as ADDED/MODIFIED
        (client-go's Replace)."""
        self.counters.resyncs += 1
        names = {_name(node) for node in nodes}
        for name, known in list(self._known.items()):
            if name not in names:
                self._forget(name, known)
        for node in sorted(nodes, key=lambda n: (_created(n), _name(n))):
            self._on_node(node)
        unassigned = sum(1 for k in self._known.values() if not k.pod_cidrs)
        log.info("listed %d nodes, %d without a podCIDR", len(nodes), unassigned)
        self.synced.set()

    def _on_node(self, node: Node) -> None:
        name, uid, cidrs = _name(node), _uid(node), node_cidrs(node)
        previous = self._known.get(name)
        self._known[name] = _Known(uid, cidrs)
        if previous is not None and previous.uid != uid:
            self._free_all(previous.uid, previous.pod_cidrs)  # deleted and registered again
        if cidrs:
            self._pending.pop(name, None)
            self._waiting.pop(name, None)
            self._starved.discard(name)
            for text in cidrs:
                cidr = _parse(text)
                if cidr is None or not self._take(cidr, uid):
                    self._report_out_of_range(name, uid, text)
        elif name not in self._in_flight and name not in self._waiting:
            self._pending[name] = None

    def _on_deleted(self, node: Node) -> None:
        name = _name(node)
        known = self._known.get(name)
        if known is None or known.uid != _uid(node):
            return  # an older incarnation's delete, already handled by a relist
        # The DELETED event carries the node's last state, which may be newer than ours.
        self._forget(name, _Known(known.uid, node_cidrs(node) or known.pod_cidrs))

    def _forget(self, name: str, known: _Known) -> None:
        self._known.pop(name, None)
        self._pending.pop(name, None)
        self._waiting.pop(name, None)
        self._starved.discard(name)
        if self._free_all(known.uid, known.pod_cidrs):
            self.counters.releases += 1
            log.info("node %s deleted: released %s", name, ",".join(known.pod_cidrs))

    def _free_all(self, uid: str, texts: tuple[str, ...]) -> bool:
        freed = False
        for text in texts:
            cidr = _parse(text)
            if cidr is not None:
                freed = self._free(cidr, uid) or freed
        if freed:
            self._wake_waiting()
        return freed

    def _wake_waiting(self) -> None:
        for name in self._waiting:
            self._pending[name] = None
        self._waiting = {}

    # -- allocation ----------------------------------------------------------------------
    def _process(self) -> None:
        while self._pending:
            name = next(iter(self._pending))
            del self._pending[name]
            known = self._known.get(name)
            if known is None or known.pod_cidrs or name in self._in_flight:
                continue
            self._allocate(name, known.uid)

    def _allocate(self, name: str, uid: str) -> None:
        cidrs: list[IPNetwork] = []
        for cidr_set in self.sets:
            try:
                cidrs.append(cidr_set.allocate_next())
            except CIDRRangeFull:
                for done, owner in zip(cidrs, self.sets, strict=False):
                    owner.release(done)  # just taken here: nobody else can hold them
                self._waiting[name] = None
                if name not in self._starved:  # one event per wait, not one per retry
                    self._starved.add(name)
                    self.recorder.node_status_change(name, uid, CIDR_NOT_AVAILABLE)
                return
        for cidr in cidrs:
            self._holders.setdefault(cidr, set()).add(uid)
        self._in_flight[name] = (uid, tuple(cidrs))
        assert self._pool is not None
        try:
            self._pool.submit(self._patch, name, uid, tuple(cidrs))
        except RuntimeError:  # the pool is shut down: we are stopping
            pass

    def _on_outcome(self, outcome: _Outcome) -> None:
        name, uid = outcome.name, outcome.uid
        if self._in_flight.get(name, (None, ()))[0] == uid:
            del self._in_flight[name]
        if outcome.kind == "done" and outcome.node is not None:
            written = outcome.node
            written_uid = _uid(written)
            self.counters.allocations += 1
            log.info("node %s: podCIDRs %s", name, ",".join(node_cidrs(written)))
            if written_uid != uid:  # a newer node of that name got them: they are its now
                self._free_all(uid, tuple(str(c) for c in outcome.cidrs))
            known = self._known.get(name)
            if written_uid == uid and (known is None or known.uid != uid):
                # deleted before the answer came (its DELETED event may not have had them)
                self._free_all(uid, tuple(str(c) for c in outcome.cidrs))
            else:
                self._on_node(written)
            return
        if outcome.kind == "stopped":
            return
        self.counters.cas_conflicts += outcome.kind == "taken"
        self._free_all(uid, tuple(str(c) for c in outcome.cidrs))
        if outcome.node is not None:
            self._on_node(outcome.node)
        elif outcome.kind in ("gone", "taken"):
            known = self._known.get(name)
            if known is not None and known.uid == uid:
                self._forget(name, known)

    def _patch(self, name: str, uid: str, cidrs: tuple[IPNetwork, ...]) -> None:
        """A worker: PatchNodeCIDRs until it lands, the node is gone, or it has podCIDRs."""
        texts = [str(c) for c in cidrs]
        body = {"spec": {"podCIDR": texts[0], "podCIDRs": texts}}
        failures = 0
        delay = self.retry_seconds
        while not self._stop.is_set():
            try:
                node = self.client.patch(Node, name, body, patch_type=PatchType.STRATEGIC)
                self._queue.put(_Outcome("done", name, uid, cidrs, node))
                return
            except ApiError as exc:
                code = exc.status.code
                if code == 404:
                    self._queue.put(_Outcome("gone", name, uid, cidrs))
                    return
                if code == 422:
                    self._queue.put(_Outcome("taken", name, uid, cidrs, self._get(name)))
                    return
                problem: Any = exc.status.message
            except (httpx.HTTPError, OSError) as exc:
                problem = exc
            failures += 1
            if failures < CIDR_UPDATE_RETRIES:
                continue
            if failures == CIDR_UPDATE_RETRIES:
                log.warning(
                    "node %s: podCIDRs %s not written after %d attempts: %s; retrying",
                    name, ",".join(texts), failures, problem,
                )  # fmt: skip
                self.recorder.node_status_change(name, uid, CIDR_ASSIGNMENT_FAILED)
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, _RETRY_MAX_SECONDS)
        self._queue.put(_Outcome("stopped", name, uid, cidrs))

    def _get(self, name: str) -> Node | None:
        try:
            node: Node = self.client.get(Node, name)
            return node
        except (ApiError, httpx.HTTPError, OSError):
            return None

    # -- blocks --------------------------------------------------------------------------
    def _take(self, cidr: IPNetwork, uid: str) -> bool:
        """Mark `cidr` taken by node `uid`; False if it lies outside every cluster CIDR."""
        for cidr_set in self.sets:
            if cidr_set.contains(cidr):
                cidr_set.occupy(cidr)
                self._holders.setdefault(cidr, set()).add(uid)
                return True
        return False

    def _free(self, cidr: IPNetwork, uid: str) -> bool:
        """Node `uid` no longer holds `cidr`; the block is free once nobody does."""
        holders = self._holders.get(cidr)
        if holders is None or uid not in holders:
            return False
        holders.discard(uid)
        if holders:
            return False
        del self._holders[cidr]
        if any(cidr.overlaps(s) for s in self.config.service_cidrs if s.version == cidr.version):
            return False  # never hand out blocks of the service range
        for cidr_set in self.sets:
            if cidr_set.contains(cidr):
                try:
                    cidr_set.release(cidr)
                except CIDROutOfRange:
                    return False
                return True
        return False

    def _report_out_of_range(self, name: str, uid: str, text: str) -> None:
        if (name, text) in self._reported:
            return
        self._reported.add((name, text))
        clusters = ",".join(str(c) for c in self.config.cluster_cidrs)
        message = (
            f"Node {name} has podCIDR {text} outside the cluster CIDR {clusters}; "
            "it is left as is and not tracked (delete and re-register the node to move it)"
        )
        log.warning("%s", message)
        self.recorder.record(name, uid, "Warning", POD_CIDR_OUT_OF_RANGE, message)


def _parse(text: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
