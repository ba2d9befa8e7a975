"""The controller end to end on a real store (sqlite and etcd, same tests)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from podnet.nodeipam import (
    CIDR_NOT_AVAILABLE,
    CLAIMS_PREFIX,
    POD_CIDR_OUT_OF_RANGE,
    Controller,
    decode_claim,
    parse_config,
)
from podnet.store import Node, Nodes, Store, list_events
from tests.backends import Backend


def settle(
    controller: Controller,
    until: Callable[[], bool] = lambda: True,
    *,
    quiet: float = 0.3,
    timeout: float = 60,
) -> None:
    """Step the controller until nothing has happened for `quiet` seconds and `until()`."""
    deadline = time.monotonic() + timeout
    last_change = time.monotonic()
    while time.monotonic() < deadline:
        if controller.step(0.05):
            last_change = time.monotonic()
        if time.monotonic() - last_change >= quiet and not controller.pending and until():
            return
    raise AssertionError("controller did not settle")


def pod_cidrs(store: Store) -> dict[str, tuple[str, ...]]:
    nodes, _ = Nodes(store).list()
    return {node.name: node.pod_cidrs for node in nodes}


def assert_disjoint(assigned: dict[str, tuple[str, ...]]) -> None:
    blocks = [ipaddress.ip_network(c) for cidrs in assigned.values() for c in cidrs]
    for i, a in enumerate(blocks):
        for b in blocks[i + 1 :]:
            assert not a.overlaps(b), f"{a} and {b} overlap"


@pytest.fixture
def controllers(store: Store) -> Iterator[list[Controller]]:
    """Controllers a test makes; closed at the end."""
    made: list[Controller] = []
    yield made
    for controller in made:
        controller.close()


def test_300_nodes_on_a_slash_16_then_deletes_then_restart(
    store: Store, controllers: list[Controller]
) -> None:
    config = parse_config("10.244.0.0/16", node_cidr_mask_size=24)
    controller = Controller(store, config)
    controllers.append(controller)
    controller.start()
    nodes = Nodes(store)
    for i in range(300):
        nodes.register(f"node-{i:03d}", addresses=[f"192.0.2.{i % 250 + 1}"])
    settle(controller, lambda: len(controller.waiting) == 44)

    assigned = pod_cidrs(store)
    with_cidr = {name: cidrs for name, cidrs in assigned.items() if cidrs}
    assert len(with_cidr) == 256
    assert_disjoint(with_cidr)
    cluster = ipaddress.ip_network("10.244.0.0/16")
    for (cidr,) in with_cidr.values():
        block = ipaddress.ip_network(cidr)
        assert block.prefixlen == 24 and block.subnet_of(cluster)  # type: ignore[arg-type]
    waiting = sorted(name for name, cidrs in assigned.items() if not cidrs)
    assert sorted(controller.waiting) == waiting and len(waiting) == 44
    warnings = [e for e in list_events(store) if e.reason == CIDR_NOT_AVAILABLE]
    assert sorted(e.object_name for e in warnings) == waiting
    assert all(e.type == "Warning" and e.count == 1 for e in warnings)
    assert warnings[0].message == f"Node {warnings[0].object_name} status is now: CIDRNotAvailable"

    # Deleting 10 nodes gives their blocks to 10 of the waiting ones.
    deleted = sorted(with_cidr)[:10]
    freed = {with_cidr[name][0] for name in deleted}
    for name in deleted:
        assert nodes.delete(name)
    settle(controller, lambda: len(controller.waiting) == 34)
    after = pod_cidrs(store)
    newly = {name: after[name] for name in waiting if after[name]}
    assert len(newly) == 10
    assert {cidrs[0] for cidrs in newly.values()} == freed
    assert_disjoint({name: c for name, c in after.items() if c})

    # A restarted controller changes nothing: same podCIDRs, same resourceVersions.
    controller.close()
    before = {n.name: (n.pod_cidrs, n.resource_version) for n in nodes.list()[0]}
    restarted = Controller(store, config)
    controllers.append(restarted)
    restarted.start()
    settle(restarted)
    assert {n.name: (n.pod_cidrs, n.resource_version) for n in nodes.list()[0]} == before
    assert sorted(restarted.waiting) == sorted(n for n, (c, _) in before.items() if not c)
    assert restarted.sets[0].allocated == 256


def test_service_range_blocks_are_never_handed_out(
    store: Store, controllers: list[Controller]
) -> None:
    config = parse_config("10.0.0.0/20", service_cluster_ip_range="10.0.0.0/22")
    controller = Controller(store, config)
    controllers.append(controller)
    controller.start()
    for i in range(14):
        Nodes(store).register(f"n{i}")
    settle(controller, lambda: len(controller.waiting) == 2)
    assigned = sorted(c[0] for c in pod_cidrs(store).values() if c)
    service = ipaddress.ip_network("10.0.0.0/22")
    assert len(assigned) == 12
    assert not any(ipaddress.ip_network(c).overlaps(service) for c in assigned)


def test_dual_stack_allocation_and_exhaustion_of_one_family(
    store: Store, controllers: list[Controller]
) -> None:
    config = parse_config(
        "10.244.0.0/16,fd00:10:244::/62", node_cidr_mask_size_ipv4=24, node_cidr_mask_size_ipv6=64
    )
    controller = Controller(store, config)
    controllers.append(controller)
    controller.start()
    for i in range(6):
        Nodes(store).register(f"n{i}")
    settle(controller, lambda: len(controller.waiting) == 2)
    nodes = Nodes(store)
    assigned = {n.name: n for n in nodes.list()[0] if n.pod_cidrs}
    assert len(assigned) == 4
    for node in assigned.values():
        v4, v6 = node.pod_cidrs
        assert ipaddress.ip_network(v4).version == 4 and ipaddress.ip_network(v6).version == 6
        assert node.to_json()["spec"]["podCIDR"] == v4
    assert_disjoint({n.name: n.pod_cidrs for n in assigned.values()})
    # The waiting nodes hold no IPv4 block: nothing leaked while IPv6 was full.
    assert controller.sets[0].allocated == 4
    assert controller.sets[1].allocated == 4


def test_node_with_pod_cidr_outside_the_cluster_cidr_is_reported_not_fatal(
    store: Store, controllers: list[Controller]
) -> None:
    nodes = Nodes(store)
    old = nodes.register("old")
    nodes.update(old.with_pod_cidrs(["10.99.0.0/24"]))  # from before a --cluster-cidr change
    nodes.register("new")
    controller = Controller(store, parse_config("10.244.0.0/16"))
    controllers.append(controller)
    controller.start()
    settle(controller)
    assert pod_cidrs(store) == {"old": ("10.99.0.0/24",), "new": ("10.244.0.0/24",)}
    (event,) = [e for e in list_events(store) if e.reason == POD_CIDR_OUT_OF_RANGE]
    assert event.type == "Warning" and event.object_name == "old"
    assert "10.99.0.0/24 outside the cluster CIDR 10.244.0.0/16" in event.message


def test_concurrent_writer_on_the_node_does_not_lose_the_assignment(
    store: Store, backend: Backend, controllers: list[Controller]
) -> None:
    """Another client keeps changing the node's annotations (as the agent does): the
    controller's CAS loses and retries; the annotation writer's CAS keeps the podCIDR."""
    nodes = Nodes(store)
    nodes.register("busy")
    stop = threading.Event()
    other = backend.open()

    def annotate() -> None:
        theirs = Nodes(other)
        n = 0
        while not stop.is_set():
            node = theirs.require("busy")
            try:
                theirs.update(node.with_annotations({"n": str(n)}))
            except Exception:  # a lost race is expected here
                pass
            n += 1

    writer = threading.Thread(target=annotate)
    writer.start()
    try:
        controller = Controller(store, parse_config("10.244.0.0/16"))
        controllers.append(controller)
        controller.start()
        # The annotation writer never stops, so there is no quiet moment to wait for.
        settle(controller, lambda: bool(nodes.require("busy").pod_cidrs), quiet=0)
    finally:
        stop.set()
        writer.join()
        other.close()
    assert nodes.require("busy").pod_cidrs == ("10.244.0.0/24",)


def test_two_controllers_racing_never_double_assign(backend: Backend) -> None:
    """Two controllers with their own store clients serve the same nodes at once."""
    config = parse_config("10.20.0.0/20", node_cidr_mask_size=24)  # 16 blocks
    stop = threading.Event()
    errors: list[BaseException] = []
    runners = []
    stores = [backend.open() for _ in range(3)]
    made: list[Controller] = []

    def serve(controller: Controller) -> None:
        try:
            controller.run(stop)
        except BaseException as exc:
            errors.append(exc)

    main = stores[2]
    nodes = Nodes(main)
    # All nodes first, then both controllers at once: each starts on the same list of
    # nodes without a block, so they cannot help but meet (started while nodes came in
    # one by one, one controller could take each node before the other saw it).
    names = [f"n{i:02d}" for i in range(24)]
    for name in names:
        nodes.register(name)
    for own_store in stores[:2]:
        controller = Controller(own_store, config, retry_seconds=0.1)
        made.append(controller)
        runners.append(threading.Thread(target=serve, args=(controller,)))
    for runner in runners:
        runner.start()
    try:

        def settled(expected: int) -> bool:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assigned = {k: v for k, v in pod_cidrs(main).items() if v}
                if len(assigned) == expected:
                    time.sleep(0.5)  # and stays so
                    if len({k: v for k, v in pod_cidrs(main).items() if v}) == expected:
                        return True
                time.sleep(0.05)
            return False

        assert settled(16)
        assigned = {k: v for k, v in pod_cidrs(main).items() if v}
        assert_disjoint(assigned)
        # They did race: each saw blocks or nodes the other had just taken.
        assert sum(c.counters.claim_conflicts + c.counters.cas_conflicts for c in made) > 0
        # Free 6 blocks: 6 waiting nodes get them, still no block given twice.
        for name in sorted(assigned)[:6]:
            nodes.delete(name)
        assert settled(16)
        assigned = {k: v for k, v in pod_cidrs(main).items() if v}
        assert_disjoint(assigned)
        # Every claim left belongs to a node that holds that block.
        claims = [decode_claim(kv) for kv in main.list(CLAIMS_PREFIX).items]
        by_node = {n.name: n for n in nodes.list()[0]}
        for claim in claims:
            assert claim is not None
            assert claim.valid_for(by_node.get(claim.node)), claim
    finally:
        stop.set()
        for runner in runners:
            runner.join(10)
        for own_store in stores:
            own_store.close()
    assert errors == []


def test_node_deleted_and_registered_again_gets_a_block(
    store: Store, controllers: list[Controller]
) -> None:
    controller = Controller(store, parse_config("10.244.0.0/23"))  # 2 blocks
    controllers.append(controller)
    controller.start()
    nodes = Nodes(store)
    nodes.register("a")
    nodes.register("b")
    nodes.register("c")
    settle(controller, lambda: controller.waiting == ["c"])
    first: Node = nodes.require("a")
    nodes.delete("a")
    nodes.register("a")
    # c waited first, so it gets the freed block; the new incarnation of a waits.
    settle(controller, lambda: controller.waiting == ["a"])
    assigned = pod_cidrs(store)
    assert assigned["c"] == first.pod_cidrs
    assert assigned["a"] == ()
    assert nodes.require("a").uid != first.uid
    nodes.delete("b")
    settle(controller, lambda: not controller.waiting)
    assert_disjoint(pod_cidrs(store))
    assert all(pod_cidrs(store).values())


def test_an_unreadable_node_object_is_skipped(store: Store, controllers: list[Controller]) -> None:
    store.create("/registry/minions/garbage", b"{not json")
    Nodes(store).register("good")
    controller = Controller(store, parse_config("10.244.0.0/16"))
    controllers.append(controller)
    controller.start()
    store.create("/registry/minions/garbage2", b"[]")
    Nodes(store).register("good2")
    settle(controller)
    raw = {kv.key: kv for kv in store.list("/registry/minions/good").items}
    assert len(raw) == 2
    assert all(b"podCIDR" in kv.value for kv in raw.values())
