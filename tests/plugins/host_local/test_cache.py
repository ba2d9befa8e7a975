"""The agent's reservation cache (inotify): after whatever another process did to the
network's directory, a warm store answers exactly what a cold read of the disk finds."""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
from pathlib import Path

import pytest

from podnet.plugins.ipam.host_local import Attachment, DiskStore
from podnet.plugins.ipam.host_local._cache import ReservationCache
from podnet.plugins.ipam.host_local._store import Reservation
from tests.plugins.host_local._helpers import netconf, run

A = Attachment("pod-a", "eth0")


def ip(text: str):
    return ipaddress.ip_address(text)


@pytest.fixture
def cache():
    cache = ReservationCache()
    yield cache
    cache.close()


def owners(store: DiskStore) -> dict[str, str]:
    with store.locked():
        return {r.filename: r.owner for r in store.reservations()}


def same_as_disk(warm: DiskStore, cold: DiskStore) -> dict[str, str]:
    found = owners(warm)
    assert found == owners(cold)
    return found


def test_a_name_released_and_taken_again_in_place_is_read_anew(tmp_path, cache):
    """Written in place with the same length (as the reference writes it, on the freed
    inode, say): only the events tell."""
    warm = DiskStore(str(tmp_path), "net1", cache=cache)
    cold = DiskStore(str(tmp_path), "net1")
    with warm.locked():
        assert warm.reserve(ip("10.1.2.5"), A, 0)
        assert warm.reserve(ip("10.1.2.6"), Attachment("pod-b", "eth0"), 0)
    assert same_as_disk(warm, cold) == {"10.1.2.5": "pod-a\r\neth0", "10.1.2.6": "pod-b\r\neth0"}
    path = tmp_path / "net1" / "10.1.2.5"
    path.unlink()
    with open(path, "wb") as handle:
        handle.write(b"pod-c\r\neth0")
    (tmp_path / "net1" / "10.1.2.6").unlink()
    assert same_as_disk(warm, cold) == {"10.1.2.5": "pod-c\r\neth0"}
    with open(path, "r+b") as handle:  # rewritten in place, same name, same inode
        handle.write(b"pod-d")
    assert same_as_disk(warm, cold) == {"10.1.2.5": "pod-d\r\neth0"}
    with warm.locked():
        warm.release(Reservation(ip("10.1.2.5"), "10.1.2.5", "pod-d\r\neth0"))
    assert same_as_disk(warm, cold) == {}


def test_the_reference_plugin_s_changes_are_seen(reference, tmp_path, cache):
    warm = DiskStore(str(tmp_path), "net1", cache=cache)
    cold = DiskStore(str(tmp_path), "net1")
    assert same_as_disk(warm, cold) == {}  # no directory yet: nothing watched
    conf = netconf(tmp_path)
    for cid in ("r1", "r2", "r3"):
        assert run(reference, "ADD", conf, cid=cid).code == 0
    assert sorted(same_as_disk(warm, cold).values()) == [f"r{i}\r\neth0" for i in (1, 2, 3)]
    assert run(reference, "DEL", conf, cid="r2").code == 0
    assert sorted(same_as_disk(warm, cold).values()) == ["r1\r\neth0", "r3\r\neth0"]


def test_a_directory_removed_or_replaced_is_read_whole_again(tmp_path, cache):
    warm = DiskStore(str(tmp_path), "net1", cache=cache)
    cold = DiskStore(str(tmp_path), "net1")
    with warm.locked():
        assert warm.reserve(ip("10.1.2.5"), A, 0)
    assert same_as_disk(warm, cold) == {"10.1.2.5": "pod-a\r\neth0"}
    shutil.rmtree(tmp_path / "net1")
    assert same_as_disk(warm, cold) == {}  # the lock made it anew, empty
    shutil.rmtree(tmp_path / "net1")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "10.1.2.9").write_bytes(b"pod-z\r\neth0")
    os.rename(other, tmp_path / "net1")  # a whole directory moved in under the name
    assert same_as_disk(warm, cold) == {"10.1.2.9": "pod-z\r\neth0"}
    os.rename(tmp_path / "net1", tmp_path / "moved-away")  # the watched one moves out
    (tmp_path / "net1").mkdir()
    (tmp_path / "net1" / "10.1.2.7").write_bytes(b"pod-y\r\neth0")
    (tmp_path / "moved-away" / "10.1.2.8").write_bytes(b"pod-x\r\neth0")
    assert same_as_disk(warm, cold) == {"10.1.2.7": "pod-y\r\neth0"}


def test_events_lost_to_an_overflowing_queue_mean_a_full_read(tmp_path, cache):
    """More changes between two ADDs than the kernel queues (16384 events by default):
    the overflow is noticed and the directory read whole."""
    warm = DiskStore(str(tmp_path), "net1", cache=cache)
    cold = DiskStore(str(tmp_path), "net1")
    with warm.locked():
        assert warm.reserve(ip("10.1.2.5"), A, 0)
    assert same_as_disk(warm, cold) == {"10.1.2.5": "pod-a\r\neth0"}
    queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if queued > 40000:
        pytest.skip(f"fs.inotify.max_queued_events is {queued}: too many events to make")
    directory = tmp_path / "net1"
    for n in range(queued // 2 + 10):  # create + delete: two events each
        (directory / f"other-{n}").touch()
        (directory / f"other-{n}").unlink()
    (directory / "10.1.2.5").unlink()  # what the lost events held
    (directory / "10.1.2.6").write_bytes(b"pod-b\r\neth0")
    assert same_as_disk(warm, cold) == {"10.1.2.6": "pod-b\r\neth0"}


def test_debris_is_found_through_the_cache(tmp_path, cache):
    warm = DiskStore(str(tmp_path), "net1", cache=cache)
    with warm.locked():
        assert warm.reserve(ip("10.1.2.5"), A, 0)
    before = tmp_path / "net1" / ".tmp-before"
    before.write_bytes(b"x")
    with warm.locked():
        assert warm.remove_debris() == [".tmp-before"]  # listed whole, the first time
    (tmp_path / "net1" / ".tmp-after").write_bytes(b"x")
    with warm.locked():
        assert warm.remove_debris() == [".tmp-after"]  # from the events
        assert warm.remove_debris() == []
    assert sorted(os.listdir(tmp_path / "net1")) == ["10.1.2.5", "last_reserved_ip.0", "lock"]


def test_many_changes_from_two_stores_and_raw_writes(tmp_path, cache):
    """A random mix of our reservations, releases and raw file changes: after each, the
    warm store says what the disk says."""
    rng = random.Random(7)
    warm = DiskStore(str(tmp_path), "net1", cache=cache)
    cold = DiskStore(str(tmp_path), "net1")
    directory = tmp_path / "net1"
    for step in range(300):
        address = ip(f"10.1.2.{rng.randrange(2, 30)}")
        action = rng.choice(["reserve", "release", "raw-write", "raw-remove", "temp"])
        if action == "reserve":
            with warm.locked():
                warm.reserve(address, Attachment(f"pod-{step}", "eth0"), 0)
        elif action == "release":
            with warm.locked():
                for reservation in warm.reservations():
                    if reservation.address == address:
                        warm.release(reservation)
        elif action == "raw-write" and directory.is_dir():
            (directory / str(address)).write_bytes(f"raw-{step}\r\neth1".encode())
        elif action == "raw-remove":
            (directory / str(address)).unlink(missing_ok=True)
        elif action == "temp" and directory.is_dir():
            (directory / f".tmp-{step}").write_bytes(b"x")
        same_as_disk(warm, cold)
    temps = sorted(n for n in os.listdir(directory) if n.startswith(".tmp-"))
    assert temps, "the mix made temp files"
    with warm.locked():
        assert sorted(warm.remove_debris()) == temps
