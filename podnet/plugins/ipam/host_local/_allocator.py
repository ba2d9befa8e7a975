"""host-local's allocation policy over a `Store` (the reference's pkg/ip allocator over
backend.Store): which address an attachment gets, what DEL releases, what CHECK expects
and what GC keeps. Where the reservations live is the store's business: on the node's
disk for the plugin (`DiskStore`), in memory in the tests of this policy.

Every change happens under the store's lock, taken once per call: ADD's rollback of
earlier sets, GC's sweep and DEL are atomic with respect to any other host-local, ours
or the reference.
"""

from __future__ import annotations

import ipaddress

from podnet.cni import CNIError, IPConfig, PluginNotAvailable, log
from podnet.ipam import IPAddress, RangeSet, candidates, count_free
from podnet.plugins.ipam.host_local._config import HostLocalConfig
from podnet.plugins.ipam.host_local._store import Attachment, Reservation, Store


def allocate(store: Store, conf: HostLocalConfig, attachment: Attachment) -> list[IPConfig]:
    """One address per range set of `conf` for `attachment` (the requested one where the
    config names one, else round-robin after the set's last reserved address); all or
    nothing."""
    ips: list[IPConfig] = []
    with store.content_file(attachment) as content, store.locked():
        existing = store.reservations()
        taken = {r.address for r in existing}
        reserved: list[Reservation] = []
        try:
            for index, rangeset in enumerate(conf.range_sets):
                try:
                    ip = _allocate(
                        store, conf, index, rangeset, attachment, existing, taken, content
                    )
                except CNIError as exc:
                    msg = f"failed to allocate for range {index}: {exc.msg}"
                    raise CNIError(msg, exc.details, code=exc.code) from None
                reserved.append(Reservation(ip.address.ip, str(ip.address.ip), attachment.content))
                ips.append(ip)
        except BaseException:
            # Release what this call reserved, and only that: an earlier ADD's address
            # stays (the reference releases every address of the container here).
            for reservation in reserved:
                store.release(reservation)
            raise
    # No directory fsync here (DEL and GC make theirs): a new name need not outlive a
    # power loss, since the pod it was made for cannot (its namespace and processes are
    # gone; the runtime tears the sandbox down and ADDs a new one), and if the name does
    # survive it is whole (the content was fsync'd before the link). That fsync made
    # every other ADD's link() wait for the directory block's write under the lock:
    # without it, ADD p50 at concurrency 4 went 34 -> 28 ms here (bench.cni, 200 pods).
    return ips


def _allocate(
    store: Store,
    conf: HostLocalConfig,
    index: int,
    rangeset: RangeSet,
    attachment: Attachment,
    existing: list[Reservation],
    taken: set[IPAddress],
    content: str | None,
) -> IPConfig:
    requested = conf.requested[index]
    if requested is not None:
        owner = rangeset.range_for(requested)
        assert owner is not None  # the config assigned it to this set
        if requested in taken or not store.reserve(
            requested, attachment, index, content_file=content
        ):
            raise CNIError(
                f"requested IP address {requested} is not available in range set {rangeset}"
            )
        return _ip_config(requested, owner.subnet.prefixlen, owner.gateway)
    for reservation in existing:
        mine = reservation.owned_by(attachment) or reservation.owned_legacy_by(attachment)
        if mine and rangeset.contains(reservation.address):
            raise CNIError(
                f"{reservation.address} has been allocated to {attachment.container_id}, "
                "duplicate allocation is not allowed"
            )
    for candidate in candidates(rangeset, store.last_reserved(index)):
        if candidate.address in taken:
            continue
        if store.reserve(candidate.address, attachment, index, content_file=content):
            taken.add(candidate.address)
            return _ip_config(candidate.address, candidate.prefixlen, candidate.gateway)
    raise CNIError(f"no IP addresses available in range set: {rangeset}")


def _ip_config(address: IPAddress, prefixlen: int, gateway: IPAddress) -> IPConfig:
    return IPConfig(address=ipaddress.ip_interface((address, prefixlen)), gateway=gateway)


def release(store: Store, attachment: Attachment) -> None:
    """Release what `attachment` holds (its legacy ID-only files when it holds nothing
    else); nothing held is success."""
    if not store.exists():
        return  # nothing was ever allocated on this network: already deleted
    with store.locked(create=False):
        # An ADD killed while reserving leaves a temp file; under the lock, any temp file
        # is such debris. DEL is what the runtime sends after that ADD, so clean it here.
        store.remove_debris()
        reservations = store.reservations()
        mine = [r for r in reservations if r.owned_by(attachment)]
        if not mine:
            mine = [r for r in reservations if r.owned_legacy_by(attachment)]
        errors = []
        for reservation in mine:
            try:
                store.release(reservation)
            except CNIError as exc:
                errors.append(exc.msg)
    if mine:
        store.sync()
    if errors:
        raise CNIError(";".join(errors))


def check(
    store: Store,
    conf: HostLocalConfig,
    attachment: Attachment,
    expected: set[IPAddress] | None,
) -> None:
    """`attachment` holds a reservation in every set, and exactly the addresses of
    `expected` (prevResult's, None without one) that belong to the sets."""
    container_id, ifname = attachment.container_id, attachment.ifname
    not_found = CNIError(f"host-local: Failed to find address added by container {container_id}")
    if not store.exists():
        raise not_found
    with store.locked(create=False):
        reservations = store.reservations()
    held = {r.address for r in reservations if r.owned_by(attachment)}
    if not held:
        held = {r.address for r in reservations if r.owned_legacy_by(attachment)}
    if not held:
        raise not_found
    for index, rangeset in enumerate(conf.range_sets):
        have = {a for a in held if rangeset.contains(a)}
        if not have:
            raise CNIError(
                f"host-local: container {container_id} ({ifname}) holds "
                f"no address in range set {index} ({rangeset})"
            )
        if expected is None:
            continue
        want = {a for a in expected if rangeset.contains(a)}
        if have != want:
            raise CNIError(
                f"host-local: container {container_id} ({ifname}) holds "
                f"{_join(have)} in range set {index} but prevResult has {_join(want) or 'none'}"
            )


def _join(addresses: set[IPAddress]) -> str:
    return ",".join(str(a) for a in sorted(addresses, key=lambda a: (a.version, int(a))))


def collect_garbage(store: Store, network: str, valid: set[Attachment]) -> None:
    """Release every reservation whose attachment is not in `valid`; a legacy ID-only
    file stays while any valid attachment has its container ID."""
    valid_ids = {a.container_id.strip() for a in valid}
    if not store.exists():
        return
    with store.locked(create=False):
        store.remove_debris()
        errors = []
        for reservation in store.reservations():
            owner = reservation.attachment()
            keep = owner in valid if owner is not None else reservation.owner in valid_ids
            if keep:
                continue
            try:
                store.release(reservation)
                log(f"host-local GC {network}: released {reservation.address} ({owner})")
            except CNIError as exc:
                errors.append(exc.msg)
    store.sync()
    if errors:
        raise CNIError(";".join(errors))


def check_room(store: Store, conf: HostLocalConfig) -> None:
    """Code 50 when some range set has no free address left: an ADD would fail."""
    reserved = [r.address for r in store.reservations()]
    for index, rangeset in enumerate(conf.range_sets):
        if count_free(rangeset, reserved) <= 0:
            raise PluginNotAvailable(
                f"range set {index} is full: no IP addresses available in range set: {rangeset}"
            )
