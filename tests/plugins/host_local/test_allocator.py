"""host-local's allocation policy over the in-memory store: round-robin, requested
addresses, rollback, duplicates, DEL, CHECK and GC, without a disk or a process. What
the disk itself must do (files, the lock, the format) is in test_store and the
executable tests."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from podnet.cni import CNIError, PluginNotAvailable, Request, TryAgainLater
from podnet.ipam import IPAddress
from podnet.plugins.ipam.host_local import load_config
from podnet.plugins.ipam.host_local._allocator import (
    allocate,
    check,
    check_room,
    collect_garbage,
    release,
)
from podnet.plugins.ipam.host_local._config import HostLocalConfig
from podnet.plugins.ipam.host_local._store import Attachment
from tests.plugins.host_local._helpers import netconf
from tests.plugins.host_local.fake_store import FakeStore

DUAL_STACK = [[{"subnet": "10.1.2.0/24"}], [{"subnet": "fd00:1::/120"}]]


def config(conf: dict[str, Any], *, args: str = "") -> HostLocalConfig:
    return load_config(Request(command="ADD", config=conf, args=args))


def ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


def add(store: FakeStore, conf: HostLocalConfig, cid: str, ifname: str = "eth0") -> list[str]:
    return [str(c.address) for c in allocate(store, conf, Attachment(cid, ifname))]


def owners(store: FakeStore) -> dict[str, str]:
    return {str(address): owner for address, owner in store.owners.items()}


def test_round_robin_continues_after_release() -> None:
    store = FakeStore()
    conf = config(netconf("/unused", ranges=[[{"subnet": "10.1.2.0/29"}]]))
    got = []
    for i in range(4):
        got += add(store, conf, f"p{i}")
        if i == 0:
            release(store, Attachment("p0", "eth0"))  # .2 is free again, but not next
    assert got == ["10.1.2.2/29", "10.1.2.3/29", "10.1.2.4/29", "10.1.2.5/29"]
    assert store.last_reserved(0) == ip("10.1.2.5")


def test_every_change_is_under_the_lock_and_releases_are_synced_after_it() -> None:
    store = FakeStore()
    conf = config(netconf("/unused", ranges=DUAL_STACK))
    add(store, conf, "a")
    assert (store.locks, store.syncs) == (1, 0), "one lock for both sets; new names unsynced"
    release(store, Attachment("a", "eth0"))
    assert (store.locks, store.syncs, store.owners) == (2, 1, {})
    release(store, Attachment("a", "eth0"))
    assert (store.locks, store.syncs) == (3, 1), "nothing released: nothing to sync"


def test_requested_addresses() -> None:
    store = FakeStore()
    conf = netconf("/unused", ranges=DUAL_STACK)
    by_env = add(store, config(conf, args="IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.2.77"), "a")
    assert by_env == ["10.1.2.77/24", "fd00:1::2/120"]
    by_args = add(store, config({**conf, "args": {"cni": {"ips": ["fd00:1::99"]}}}), "b")
    # a requested address also moves round-robin on, as in the reference
    assert by_args == ["10.1.2.78/24", "fd00:1::99/120"]
    runtime = {"runtimeConfig": {"ips": ["10.1.2.90/24", "fd00:1::98/120"]}}
    assert add(store, config({**conf, **runtime}), "c") == ["10.1.2.90/24", "fd00:1::98/120"]
    with pytest.raises(CNIError) as taken:
        add(store, config(conf, args="IP=10.1.2.77"), "d")
    assert taken.value.msg == (
        "failed to allocate for range 0: requested IP address 10.1.2.77 is not available "
        "in range set 10.1.2.1-10.1.2.254"
    )


def test_rollback_of_earlier_sets_keeps_older_reservations() -> None:
    store = FakeStore()
    conf = config(
        netconf("/unused", ranges=[[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/30"}]])
    )
    add(store, conf, "a")  # takes 10.1.3.2, the only one
    before = owners(store)
    with pytest.raises(CNIError) as full:
        add(store, conf, "b")
    assert full.value.msg == (
        "failed to allocate for range 1: no IP addresses available in range set: 10.1.3.1-10.1.3.2"
    )
    assert owners(store) == before  # b's 10.1.2.3 was released again


def test_duplicate_allocation_is_refused() -> None:
    store = FakeStore()
    conf = config(netconf("/unused"))
    add(store, conf, "a")
    before = owners(store)
    with pytest.raises(CNIError) as duplicate:
        add(store, conf, "a")
    assert duplicate.value.msg == (
        "failed to allocate for range 0: 10.1.2.2 has been allocated to a, "
        "duplicate allocation is not allowed"
    )
    assert owners(store) == before


def test_del_releases_only_its_interface_and_legacy_files() -> None:
    store = FakeStore()
    conf = config(netconf("/unused"))
    add(store, conf, "pod-a", "eth0")
    add(store, conf, "pod-a", "net1")
    store.owners[ip("10.1.2.100")] = "pod-old"  # written by host-local before ifname
    store.debris = [".tmp-killed-add"]
    release(store, Attachment("pod-a", "net1"))
    assert store.debris == [], "DEL, sent after a killed ADD, cleans up what it left"
    assert owners(store) == {"10.1.2.2": "pod-a\r\neth0", "10.1.2.100": "pod-old"}
    release(store, Attachment("pod-old", "eth0"))
    assert owners(store) == {"10.1.2.2": "pod-a\r\neth0"}


def test_del_on_a_network_never_used_creates_nothing() -> None:
    store = FakeStore()
    release(store, Attachment("pod-a", "eth0"))
    assert (store.exists(), store.locks) == (False, 0)


def test_check_compares_the_addresses_of_prev_result() -> None:
    store = FakeStore()
    conf = config(netconf("/unused", ranges=DUAL_STACK))
    add(store, conf, "pod-a")
    add(store, conf, "pod-b")
    first, second = {ip("10.1.2.2"), ip("fd00:1::2")}, {ip("10.1.2.3"), ip("fd00:1::3")}
    check(store, conf, Attachment("pod-a", "eth0"), first)
    # pod-a's reservation exists, but prevResult says pod-b's addresses
    with pytest.raises(CNIError) as wrong:
        check(store, conf, Attachment("pod-a", "eth0"), second)
    assert "holds 10.1.2.2 in range set 0 but prevResult has 10.1.2.3" in wrong.value.msg
    # no reservation at all for this attachment
    with pytest.raises(CNIError) as missing:
        check(store, conf, Attachment("pod-a", "eth1"), first)
    assert missing.value.msg == "host-local: Failed to find address added by container pod-a"
    # without prevResult: the reservation must exist in every set
    del store.owners[ip("fd00:1::2")]
    with pytest.raises(CNIError) as half:
        check(store, conf, Attachment("pod-a", "eth0"), None)
    assert "holds no address in range set 1" in half.value.msg


def test_gc_keeps_valid_attachments_and_legacy_files_of_valid_containers() -> None:
    store = FakeStore()
    conf = config(netconf("/unused", version="1.1.0"))
    for cid in ("a", "b"):
        add(store, conf, cid)
    add(store, conf, "a", "net1")
    store.owners[ip("10.1.2.50")] = "b"  # an ID-only file of pod b: b is still valid
    store.owners[ip("10.1.2.51")] = "c"  # ... of pod c: gone
    store.debris = [".tmp-crashed"]  # debris of a crash
    collect_garbage(store, "net1", {Attachment("a", "eth0"), Attachment("b", "eth0")})
    assert owners(store) == {"10.1.2.2": "a\r\neth0", "10.1.2.3": "b\r\neth0", "10.1.2.50": "b"}
    assert store.debris == []


def test_gc_with_an_empty_list_releases_everything() -> None:
    store = FakeStore()
    conf = config(netconf("/unused", version="1.1.0"))
    for cid in ("a", "b"):
        add(store, conf, cid)
    collect_garbage(store, "net1", set())
    assert owners(store) == {}


def test_status_says_unavailable_when_a_set_is_full() -> None:
    store = FakeStore()
    conf = config(netconf("/unused", ranges=DUAL_STACK[:1] + [[{"subnet": "10.1.3.0/30"}]]))
    check_room(store, conf)
    add(store, conf, "a")  # takes 10.1.3.2, the only one
    with pytest.raises(PluginNotAvailable) as full:
        check_room(store, conf)
    assert full.value.msg == (
        "range set 1 is full: no IP addresses available in range set: 10.1.3.1-10.1.3.2"
    )


def test_a_busy_lock_fails_the_call_and_changes_nothing() -> None:
    class BusyStore(FakeStore):
        def locked(self, *, create: bool = True) -> Any:
            raise TryAgainLater("the network's lock is busy")

    store = BusyStore({ip("10.1.2.2"): "a\r\neth0"})
    with pytest.raises(TryAgainLater):
        add(store, config(netconf("/unused")), "b")
    with pytest.raises(TryAgainLater):
        release(store, Attachment("a", "eth0"))
    assert owners(store) == {"10.1.2.2": "a\r\neth0"}
