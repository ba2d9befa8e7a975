"""Where host-local's reservations live: the `Store` interface the allocator works over
(the reference's backend.Store), and its one real implementation, the disk store, in the
reference's format so that both plugins can serve one node, even at the same moment
(plugins/ipam/host-local/backend/disk):

    <dataDir>/<network>/               mode 0755
        <ip>                           "<containerID>\\r\\n<ifname>" (before: "<containerID>")
        last_reserved_ip.<set index>   the address last handed out from that set, no newline
        lock                           flock()ed exclusively around every change

The lock is taken as the Go go-filemutex does it: open(O_CREAT|O_RDONLY, 0750), then
flock(LOCK_EX) on that descriptor, but with a deadline (see _lock). flock locks belong
to the open file description, so our process and a reference process exclude each other
on the same file.

A reservation appears whole or not at all: the content is written to a temp file that is
then hard-linked to the address's name. link() fails with EEXIST when the name exists, so
it is the same exclusive create as the reference's O_EXCL, without the window in which a
crash leaves an empty reservation that nobody can ever match and release.

The content depends only on the attachment, not on the address picked, so ADD writes and
fsyncs that temp file (`content_file`) before it takes the lock: the slow part of a
reservation never holds the other ADDs of the node back, and under the lock only link()
remains. A temp file found under the lock is debris of a crash, or the content file of an
ADD still waiting for the lock; GC removes both, and such an ADD then writes its
reservation the slow way.

Durability: a release is fsync'd (the directory, after the lock): one that a power loss
undid would hold the address for a pod the runtime has forgotten. A new reservation is
not: its pod cannot outlive a power loss either (the runtime then tears that sandbox down,
a DEL that finds nothing, and ADDs a new one), and a name that survives is whole.

last_reserved_ip.N is written in place, without fsync, as the reference does: it is only
read under the lock, and one lost in a crash only moves where round-robin starts.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from podnet._record import FrozenRecord
from podnet.cni import IOFailure, LockTimeout, TryAgainLater, flock_within, fsync_dir, write_temp
from podnet.ipam import IPAddress, canonical_ip

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Final, Protocol

    from podnet.plugins.ipam.host_local._cache import ReservationCache
else:
    Protocol = object  # Store is only a type: nothing checks it at run time

LAST_RESERVED_PREFIX = "last_reserved_ip."
LOCK_NAME = "lock"
TEMP_PREFIX = ".tmp-"
LINE_BREAK = "\r\n"
# How long an invocation waits for the lock before it answers "try again" (code 11).
LOCK_TIMEOUT = 20.0


class Attachment(FrozenRecord):
    """The (container ID, interface) a reservation belongs to."""

    __slots__ = ("container_id", "ifname", "content", "legacy_content")
    _compared = ("container_id", "ifname")

    def __init__(self, container_id: str, ifname: str) -> None:
        self.container_id: Final = container_id
        self.ifname: Final = ifname
        # What its reservation files hold (compared with every file of the network).
        self.content: Final = container_id.strip() + LINE_BREAK + ifname
        self.legacy_content: Final = container_id.strip()


class Reservation(FrozenRecord):
    __slots__ = ("address", "filename", "owner")

    def __init__(self, address: IPAddress, filename: str, owner: str) -> None:
        self.address: Final = address
        self.filename: Final = filename
        self.owner: Final = owner  # the file's content, stripped as the reference compares it

    def owned_by(self, attachment: Attachment) -> bool:
        return self.owner == attachment.content

    def owned_legacy_by(self, attachment: Attachment) -> bool:
        """Files of host-local before ifname was recorded hold only the container ID."""
        return self.owner == attachment.legacy_content

    def attachment(self) -> Attachment | None:
        container_id, sep, ifname = self.owner.partition(LINE_BREAK)
        return Attachment(container_id, ifname) if sep else None


class Store(Protocol):
    """The reservations of one network, as the allocator needs them. Changes happen
    between `locked()`'s enter and exit; an implementation may make releases durable only
    on `sync()`, which DEL and GC call after letting the lock go (a new reservation is
    whole when it appears, but need not outlive a power loss: see the module doc)."""

    def exists(self) -> bool:
        """False when nothing was ever reserved on this network."""

    def locked(self, *, create: bool = True) -> AbstractContextManager[None]:
        """Hold the network's lock (TryAgainLater when it stays busy); with `create`,
        the network is created first."""

    def sync(self) -> None: ...

    def reservations(self) -> list[Reservation]: ...

    def content_file(self, attachment: Attachment) -> AbstractContextManager[str | None]:
        """Before the lock: whatever makes reserving for `attachment` quick under it, to
        hand to `reserve` (the disk store's reservation content, written and fsync'd)."""

    def reserve(
        self,
        address: IPAddress,
        attachment: Attachment,
        set_index: int,
        *,
        content_file: str | None = None,
    ) -> bool:
        """Reserve `address` for `attachment` and remember it as range set
        `set_index`'s last reserved; False when the address is taken."""

    def last_reserved(self, set_index: int) -> IPAddress | None: ...

    def release(self, reservation: Reservation) -> None:
        """Drop a reservation; one already gone counts as released."""

    def remove_debris(self) -> list[str]:
        """What a crashed ADD left behind (with the lock held); the names removed."""


class DiskStore:
    def __init__(
        self,
        data_dir: str,
        network: str,
        *,
        lock_timeout: float | None = None,
        cache: ReservationCache | None = None,
    ) -> None:
        self.directory = os.path.join(data_dir, network)
        self.lock_timeout = LOCK_TIMEOUT if lock_timeout is None else lock_timeout
        self.cache = cache

    def exists(self) -> bool:
        return os.path.isdir(self.directory)

    @contextmanager
    def locked(self, *, create: bool = True) -> Iterator[None]:
        """Hold the network's lock; with `create`, make the directory first."""
        path = os.path.join(self.directory, LOCK_NAME)
        with _io_errors():
            try:
                fd = os.open(path, os.O_CREAT | os.O_RDONLY | os.O_CLOEXEC, 0o750)
            except FileNotFoundError:
                if not create:
                    raise
                # the network's first reservation: only then is the directory made
                os.makedirs(self.directory, mode=0o755, exist_ok=True)
                fd = os.open(path, os.O_CREAT | os.O_RDONLY | os.O_CLOEXEC, 0o750)
        try:
            with flock_within(fd, path, self.lock_timeout):
                yield
        except LockTimeout as exc:
            raise TryAgainLater(f"the network's lock is busy: {exc}") from None
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def sync(self) -> None:
        """Make the releases so far durable (fsync the directory), so that a released
        address does not come back after a power loss owned by a pod the runtime has
        forgotten. Called by DEL and GC after the lock is let go."""
        with _io_errors():
            fsync_dir(self.directory)

    def reservations(self) -> list[Reservation]:
        """Every reservation in the directory (names that are not addresses are skipped)."""
        return self._listing()[0]

    def _listing(self) -> tuple[list[Reservation], list[str]]:
        """The reservations and the temp files in the directory, from the cache where one
        serves (see _cache), else read whole."""
        try:
            directory = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            raise IOFailure(f"reading {self.directory}: {exc.strerror}") from None
        try:
            if self.cache is not None:
                with _io_errors():
                    listing = self.cache.listing(self.directory, directory)
                if listing is not None:
                    return listing
            found, temps = [], []
            for name in os.listdir(directory):
                address = address_of(name)
                if address is None:
                    if name.startswith(TEMP_PREFIX):
                        temps.append(name)
                    continue
                try:
                    content = read_small(name, directory)
                except (FileNotFoundError, IsADirectoryError):
                    continue
                except OSError as exc:
                    raise IOFailure(f"reading reservation {name}: {exc.strerror}") from None
                found.append(Reservation(address, name, owner_of(content)))
            return found, temps
        finally:
            os.close(directory)

    @contextmanager
    def content_file(self, attachment: Attachment) -> Iterator[str]:
        """A temp file in the directory holding `attachment`'s reservation content, on
        disk (fsync'd); removed on exit. Call it before taking the lock."""
        data = attachment.content.encode()
        with _io_errors():
            try:
                tmp = write_temp(self.directory, data, prefix=TEMP_PREFIX)
            except FileNotFoundError:  # the network's first reservation
                os.makedirs(self.directory, mode=0o755, exist_ok=True)
                tmp = write_temp(self.directory, data, prefix=TEMP_PREFIX)
        try:
            yield tmp
        finally:
            _unlink_quietly(tmp)

    def reserve(
        self,
        address: IPAddress,
        attachment: Attachment,
        set_index: int,
        *,
        content_file: str | None = None,
    ) -> bool:
        """Create the reservation of `address`, from `content_file` when given (see
        `content_file`); False when the address is already taken."""
        path = os.path.join(self.directory, str(address))
        data = attachment.content.encode()
        with _io_errors():
            if not self._link_or_create(content_file, path, data):
                return False
            self._write_last_reserved(set_index, address)
        return True

    def _link_or_create(self, content_file: str | None, path: str, data: bytes) -> bool:
        if content_file is not None:
            try:
                return _link(content_file, path, data)
            except FileNotFoundError:
                pass  # GC took it for debris while this ADD waited for the lock
        tmp = write_temp(self.directory, data, prefix=TEMP_PREFIX)
        try:
            return _link(tmp, path, data)
        finally:
            _unlink_quietly(tmp)

    def _write_last_reserved(self, set_index: int, address: IPAddress) -> None:
        # Overwritten in place and cut to length, not truncated to zero first: ext4 flushes
        # a file truncated to zero and written again when it is closed (auto_da_alloc), a
        # disk write on every ADD for a hint. Readers hold the lock, as this writer does.
        path = os.path.join(self.directory, f"{LAST_RESERVED_PREFIX}{set_index}")
        data = str(address).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)

    def last_reserved(self, set_index: int) -> IPAddress | None:
        path = os.path.join(self.directory, f"{LAST_RESERVED_PREFIX}{set_index}")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                text = os.read(fd, 64).decode(errors="replace")
            finally:
                os.close(fd)
        except OSError:
            return None  # only a hint for round-robin; the reference ignores it too
        return address_of(text.strip())

    def release(self, reservation: Reservation) -> None:
        try:
            os.unlink(os.path.join(self.directory, reservation.filename))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise IOFailure(f"releasing {reservation.filename}: {exc.strerror}") from None

    def remove_debris(self) -> list[str]:
        """Temp files left by a crash; call with the lock held."""
        removed = []
        for name in self._listing()[1]:
            try:
                os.unlink(os.path.join(self.directory, name))
                removed.append(name)
            except FileNotFoundError:
                pass
        return removed


def _link(tmp: str, path: str, data: bytes) -> bool:
    """Give the content in `tmp` the name `path`; False when `path` exists."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP):
            raise
        # A filesystem without hard links: the reference's exclusive create.
        return _create_exclusive(path, data)
    return True


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _create_exclusive(path: str, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def owner_of(content: bytes) -> str:
    return content.decode(errors="replace").strip()


def read_small(name: str, directory: int) -> bytes:
    """The first 4 KiB of a file in an open directory, without a Python file object: ADD
    and DEL read every reservation of the network, and this is a third of open()'s cost."""
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=directory)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=8192)
def address_of(name: str) -> IPAddress | None:
    """The address a file name stands for (cached: ADD parses every name of the directory,
    and a node's names repeat)."""
    if not name or not (name[0].isdigit() or ":" in name):
        return None  # lock, last_reserved_ip.N, temp files: fast path before parsing
    try:
        return canonical_ip(ipaddress.ip_address(name))
    except ValueError:
        return None


@contextmanager
def _io_errors() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        where = exc.filename or ""
        raise IOFailure(f"{where}: {exc.strerror or exc}".lstrip(": ")) from None
