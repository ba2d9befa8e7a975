"""The CIDR set: KCM's round-robin next-fit over a bitmap of node-sized blocks."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podnet.nodeipam import CIDROutOfRange, CIDRRangeFull, CIDRSet, IPNetwork, SubnetTooBig


def net(text: str) -> IPNetwork:
    return ipaddress.ip_network(text)


def test_first_node_gets_the_first_block_then_round_robin() -> None:
    cidrs = CIDRSet(net("10.244.0.0/16"), 24)
    assert cidrs.max_blocks == 256
    assert [str(cidrs.allocate_next()) for _ in range(3)] == [
        "10.244.0.0/24",
        "10.244.1.0/24",
        "10.244.2.0/24",
    ]
    # A released block is not reused at once: the scan goes on from the last one handed out.
    cidrs.release(net("10.244.0.0/24"))
    assert str(cidrs.allocate_next()) == "10.244.3.0/24"
    assert cidrs.allocated == 3 and cidrs.free == 253


def test_exhaustion_then_a_release_is_reused() -> None:
    cidrs = CIDRSet(net("10.0.0.0/30"), 32)
    got = {str(cidrs.allocate_next()) for _ in range(4)}
    assert got == {"10.0.0.0/32", "10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"}
    with pytest.raises(CIDRRangeFull, match="no remaining CIDRs left to allocate"):
        cidrs.allocate_next()
    cidrs.release(net("10.0.0.2/32"))
    assert str(cidrs.allocate_next()) == "10.0.0.2/32"


@pytest.mark.parametrize(
    ("occupied", "taken"),
    [
        ("10.244.5.0/24", 1),  # one node block
        ("10.244.5.128/25", 1),  # part of a block takes the whole block
        ("10.244.4.0/22", 4),  # several blocks
        ("10.240.0.0/12", 256),  # a range covering the cluster CIDR takes everything
        ("10.244.0.0/16", 256),
    ],
)
def test_occupy_marks_every_overlapping_block(occupied: str, taken: int) -> None:
    cidrs = CIDRSet(net("10.244.0.0/16"), 24)
    cidrs.occupy(net(occupied))
    cidrs.occupy(net(occupied))  # idempotent
    assert cidrs.allocated == taken
    cidrs.release(net(occupied))
    assert cidrs.allocated == 0


@pytest.mark.parametrize("outside", ["10.245.0.0/24", "192.168.0.0/16", "fd00::/64"])
def test_outside_the_cluster_cidr(outside: str) -> None:
    cidrs = CIDRSet(net("10.244.0.0/16"), 24)
    with pytest.raises(CIDROutOfRange, match=f"cidr {outside} is out the range of cluster cidr"):
        cidrs.occupy(net(outside))
    assert not cidrs.contains(net(outside))


def test_ipv6_cluster_at_the_start_of_the_address_space() -> None:
    cidrs = CIDRSet(net("::/16"), 16)
    assert cidrs.allocate_next() == net("::/16")


def test_ipv6_blocks_and_limit() -> None:
    cidrs = CIDRSet(net("fd00:10:244::/56"), 64)
    assert cidrs.max_blocks == 256
    assert str(cidrs.allocate_next()) == "fd00:10:244::/64"
    assert str(cidrs.allocate_next()) == "fd00:10:244:1::/64"
    CIDRSet(net("fd00::/48"), 64)  # a difference of 16 is the most KCM accepts
    with pytest.raises(SubnetTooBig, match="the node CIDR size is too big"):
        CIDRSet(net("fd00::/47"), 64)


def test_a_slash_8_with_slash_24_nodes_hands_out_all_65536_blocks() -> None:
    cidrs = CIDRSet(net("10.0.0.0/8"), 24)
    seen = {cidrs.allocate_next() for _ in range(65536)}
    assert len(seen) == 65536
    with pytest.raises(CIDRRangeFull):
        cidrs.allocate_next()


def test_block_count_not_a_multiple_of_eight() -> None:
    cidrs = CIDRSet(net("10.0.0.0/24"), 26)  # 4 blocks: the spare bits must never be used
    assert {str(cidrs.allocate_next()) for _ in range(4)} == {
        "10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/26", "10.0.0.192/26",
    }  # fmt: skip
    with pytest.raises(CIDRRangeFull):
        cidrs.allocate_next()


# -- properties ----------------------------------------------------------------------------
@st.composite
def cluster_setups(draw: st.DrawFn) -> tuple[IPNetwork, int, IPNetwork | None]:
    """A cluster CIDR, a node mask making at most 512 blocks, and maybe a service range
    somewhere in (or around) the cluster CIDR."""
    version = draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(min_value=1 if version == 4 else 16, max_value=bits))
    address = draw(st.integers(min_value=0, max_value=2**bits - 1))
    family = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    cluster: IPNetwork = family((address, prefix), strict=False)
    node_mask = draw(st.integers(min_value=prefix, max_value=min(bits, prefix + 9)))
    service = None
    if draw(st.booleans()):
        service_prefix = draw(st.integers(min_value=max(0, prefix - 2), max_value=bits))
        offset = draw(st.integers(min_value=0, max_value=2 ** (bits - prefix) - 1))
        base = int(cluster.network_address) + offset
        if draw(st.booleans()):  # sometimes somewhere else entirely
            base = draw(st.integers(min_value=0, max_value=2**bits - 1))
        service = family((base, service_prefix), strict=False)
    return cluster, node_mask, service


operations = st.lists(
    st.one_of(st.just(("register", 0)), st.tuples(st.just("delete"), st.integers(0, 10_000))),
    max_size=150,
)


@settings(max_examples=150, deadline=None)
@given(setup=cluster_setups(), ops=operations)
def test_any_register_delete_sequence_keeps_pod_cidrs_disjoint_and_in_range(
    setup: tuple[IPNetwork, int, IPNetwork | None], ops: list[tuple[str, int]]
) -> None:
    cluster, node_mask, service = setup
    cidrs = CIDRSet(cluster, node_mask)
    if service is not None and service.overlaps(cluster):
        cidrs.occupy(service)
    reserved = cidrs.allocated
    assigned: list[IPNetwork] = []
    for op, arg in ops:
        if op == "register":
            was_full = cidrs.free == 0
            try:
                block = cidrs.allocate_next()
            except CIDRRangeFull:
                assert was_full
                continue
            assert not was_full
            assigned.append(block)
        elif assigned:
            freed = assigned.pop(arg % len(assigned))
            full_before = cidrs.free == 0
            cidrs.release(freed)
            if full_before:  # the only free block is the one just freed: it is reused next
                again = cidrs.allocate_next()
                assert again == freed
                assigned.append(again)
        # The invariants, after every step.
        assert len(set(assigned)) == len(assigned)  # same-size aligned blocks: distinct = disjoint
        for block in assigned:
            assert block.prefixlen == node_mask
            assert block.subnet_of(cluster)  # type: ignore[arg-type]
            if service is not None:
                assert not block.overlaps(service)
        assert cidrs.allocated == reserved + len(assigned)
