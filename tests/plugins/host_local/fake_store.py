"""An in-memory host-local store (as the reference's backend/testing FakeStore): the
allocator's logic tested without a disk, a lock file or root."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from podnet.ipam import IPAddress
from podnet.plugins.ipam.host_local._store import Attachment, Reservation, Store


class FakeStore:
    """Reservations in a dict. `held` says whether the lock is held now, `locks` how
    often it was taken, `syncs` how often changes were made durable; `debris` stands for
    what a crashed ADD left."""

    def __init__(self, reservations: dict[IPAddress, str] | None = None) -> None:
        self.owners: dict[IPAddress, str] = dict(reservations or {})
        self.last: dict[int, IPAddress] = {}
        self.created = bool(self.owners)
        self.held = False
        self.locks = 0
        self.syncs = 0
        self.debris: list[str] = []

    def exists(self) -> bool:
        return self.created

    @contextmanager
    def locked(self, *, create: bool = True) -> Iterator[None]:
        assert not self.held, "the lock is not reentrant"
        if create:
            self.created = True
        self.held, self.locks = True, self.locks + 1
        try:
            yield
        finally:
            self.held = False

    def sync(self) -> None:
        assert not self.held, "sync comes after the lock is let go"
        self.syncs += 1

    def reservations(self) -> list[Reservation]:
        return [Reservation(ip, str(ip), owner) for ip, owner in self.owners.items()]

    @contextmanager
    def content_file(self, attachment: Attachment) -> Iterator[str | None]:
        yield None

    def reserve(
        self,
        address: IPAddress,
        attachment: Attachment,
        set_index: int,
        *,
        content_file: str | None = None,
    ) -> bool:
        assert self.held, "reserved without the lock"
        if address in self.owners:
            return False
        self.owners[address] = attachment.content.strip()
        self.last[set_index] = address
        return True

    def last_reserved(self, set_index: int) -> IPAddress | None:
        return self.last.get(set_index)

    def release(self, reservation: Reservation) -> None:
        assert self.held, "released without the lock"
        self.owners.pop(reservation.address, None)

    def remove_debris(self) -> list[str]:
        assert self.held, "debris removed without the lock"
        removed, self.debris = self.debris, []
        return removed


_: type[Store] = FakeStore  # mypy: the fake is a Store
