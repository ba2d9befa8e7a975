"""The disk store in-process: the lock excludes the reference binary, reservations
appear whole, and the fallback for filesystems without hard links; and the contract the
allocator relies on, held by the disk store and the in-memory fake alike."""

from __future__ import annotations

import errno
import ipaddress
import os
import time

import pytest

from podnet.plugins.ipam.host_local import Attachment, DiskStore
from podnet.plugins.ipam.host_local._store import Reservation, Store
from tests.plugins.host_local._helpers import netconf, reservations, start
from tests.plugins.host_local.fake_store import FakeStore

A = Attachment("pod-a", "eth0")


def ip(text: str):
    return ipaddress.ip_address(text)


def test_our_lock_blocks_the_reference(reference, tmp_path):
    store = DiskStore(str(tmp_path), "net1")
    with store.locked():
        proc = start(reference, "ADD", netconf(tmp_path), cid="waiting")
        time.sleep(0.3)
        assert proc.poll() is None  # flock()ed out
        assert reservations(tmp_path / "net1") == {}
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, stdout
    assert reservations(tmp_path / "net1") == {"10.1.2.2": b"waiting\r\neth0"}


def test_reserve_is_exclusive_and_leaves_no_temp_files(tmp_path):
    store = DiskStore(str(tmp_path), "net1")
    with store.locked():
        assert store.reserve(ip("10.1.2.5"), A, 0)
        assert not store.reserve(ip("10.1.2.5"), Attachment("pod-b", "eth0"), 0)
    assert sorted(os.listdir(tmp_path / "net1")) == ["10.1.2.5", "last_reserved_ip.0", "lock"]
    assert (tmp_path / "net1" / "last_reserved_ip.0").read_bytes() == b"10.1.2.5"
    assert store.last_reserved(0) == ip("10.1.2.5")
    [found] = store.reservations()
    assert (found.address, found.owner, found.attachment()) == (ip("10.1.2.5"), "pod-a\r\neth0", A)


def test_reserve_without_hard_links(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store = DiskStore(str(tmp_path), "net1")
    with store.locked():
        assert store.reserve(ip("fd00::7"), A, 1)
        assert not store.reserve(ip("fd00::7"), A, 1)
    assert reservations(tmp_path / "net1") == {"fd00::7": b"pod-a\r\neth0"}
    assert not [n for n in os.listdir(tmp_path / "net1") if n.startswith(".tmp-")]


def test_unreadable_hints_and_foreign_names_are_ignored(tmp_path):
    net = tmp_path / "net1"
    net.mkdir()
    (net / "last_reserved_ip.0").write_bytes(b"garbage")
    (net / "notes.txt").write_bytes(b"pod-a\r\neth0")
    (net / "10.1.2.300").write_bytes(b"pod-a\r\neth0")
    store = DiskStore(str(tmp_path), "net1")
    assert store.last_reserved(0) is None
    assert store.last_reserved(1) is None
    assert store.reservations() == []


def test_reservation_content_is_written_before_the_lock(tmp_path):
    store = DiskStore(str(tmp_path), "net1")
    with store.content_file(A) as content:
        with open(content, "rb") as handle:
            assert handle.read() == b"pod-a\r\neth0"
        with store.locked():
            assert store.reserve(ip("10.1.2.5"), A, 0, content_file=content)
            assert store.reserve(ip("fd00::5"), A, 1, content_file=content)  # dual stack
            assert not store.reserve(ip("10.1.2.5"), A, 0, content_file=content)
    assert reservations(tmp_path / "net1") == {
        "10.1.2.5": b"pod-a\r\neth0",
        "fd00::5": b"pod-a\r\neth0",
    }
    assert not [n for n in os.listdir(tmp_path / "net1") if n.startswith(".tmp-")]


def test_a_content_file_taken_for_debris_still_reserves(tmp_path):
    """GC removes temp files under the lock; an ADD waiting for it writes the slow way."""
    store = DiskStore(str(tmp_path), "net1")
    with store.content_file(A) as content:
        with store.locked():
            assert store.remove_debris() == [os.path.basename(content)]
            assert store.reserve(ip("10.1.2.7"), A, 0, content_file=content)
    assert reservations(tmp_path / "net1") == {"10.1.2.7": b"pod-a\r\neth0"}
    assert store.last_reserved(0) == ip("10.1.2.7")


def test_the_hint_is_cut_to_the_address_written_last(tmp_path):
    """last_reserved_ip.N is overwritten in place: a shorter address leaves no tail."""
    store = DiskStore(str(tmp_path), "net1")
    with store.locked():
        assert store.reserve(ip("10.1.2.100"), A, 0)
        assert store.reserve(ip("10.1.2.99"), Attachment("pod-b", "eth0"), 0)
    assert (tmp_path / "net1" / "last_reserved_ip.0").read_bytes() == b"10.1.2.99"
    assert store.last_reserved(0) == ip("10.1.2.99")


@pytest.fixture(params=["disk", "fake"])
def any_store(request, tmp_path) -> Store:
    return DiskStore(str(tmp_path), "net1") if request.param == "disk" else FakeStore()


def test_both_stores_keep_the_contract(any_store):
    """What the allocator relies on, so the fake's tests say something about the disk."""
    store = any_store
    assert not store.exists()
    with store.locked():
        assert store.reservations() == []
        assert store.last_reserved(0) is None
        assert store.reserve(ip("10.1.2.5"), A, 0)
        assert not store.reserve(ip("10.1.2.5"), Attachment("pod-b", "eth0"), 0), "exclusive"
        assert store.reserve(ip("fd00::5"), A, 1)
    store.sync()
    assert store.exists()
    assert (store.last_reserved(0), store.last_reserved(1)) == (ip("10.1.2.5"), ip("fd00::5"))
    found = sorted(store.reservations(), key=lambda r: r.address.version)
    assert [(r.address, r.owner, r.attachment()) for r in found] == [
        (ip("10.1.2.5"), "pod-a\r\neth0", A),
        (ip("fd00::5"), "pod-a\r\neth0", A),
    ]
    with store.locked(create=False):
        store.release(found[0])
        store.release(Reservation(ip("10.1.2.5"), "10.1.2.5", "pod-a\r\neth0"))  # gone: fine
        assert store.remove_debris() == []
    assert [r.address for r in store.reservations()] == [ip("fd00::5")]
    assert store.last_reserved(0) == ip("10.1.2.5"), "a release leaves the hint"
