"""host-local's verbs: ADD, DEL and CHECK as the reference, plus GC and STATUS, which
the reference lacks (containernetworking/plugins#1047).

Every change happens under the network's lock, taken once per invocation: ADD's rollback
of earlier sets, GC's sweep and DEL are atomic with respect to any other host-local,
ours or the reference.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from podnet.cni import (
    CNIError,
    IPConfig,
    PluginNotAvailable,
    Request,
    Result,
    log,
    prev_result,
    valid_attachments,
)
from podnet.ipam import IPAddress, RangeSet, candidates, canonical_ip, count_free
from podnet.plugins.ipam.host_local._config import HostLocalConfig, load_config
from podnet.plugins.ipam.host_local._dns import read_resolv_conf
from podnet.plugins.ipam.host_local._store import Attachment, DiskStore, Reservation


def add(request: Request) -> Result:
    conf = load_config(request)
    result = Result(cni_version=conf.cni_version, routes=list(conf.routes))
    if conf.resolv_conf:
        result.dns = read_resolv_conf(conf.resolv_conf)
    attachment = Attachment(request.container_id, request.ifname)
    store = DiskStore(conf.data_dir, conf.network)
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
                result.ips.append(ip)
        except BaseException:
            # Release what this call reserved, and only that: an earlier ADD's address
            # stays (the reference releases every address of the container here).
            for reservation in reserved:
                store.release(reservation)
            raise
    store.sync()  # the new names are on disk before the runtime hears of them
    return result


def _allocate(
    store: DiskStore,
    conf: HostLocalConfig,
    index: int,
    rangeset: RangeSet,
    attachment: Attachment,
    existing: list[Reservation],
    taken: set[IPAddress],
    content: str,
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


def delete(request: Request) -> None:
    conf = load_config(request)
    store = DiskStore(conf.data_dir, conf.network)
    if not store.exists():
        return  # nothing was ever allocated on this network: already deleted
    attachment = Attachment(request.container_id, request.ifname)
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


def check(request: Request) -> None:
    """The attachment holds a reservation in every set, and exactly the addresses of
    prevResult that belong to this network's sets (the reference only checks that the
    container holds some address)."""
    conf = load_config(request)
    expected = _prev_result_addresses(request.config)
    attachment = Attachment(request.container_id, request.ifname)
    store = DiskStore(conf.data_dir, conf.network)
    not_found = CNIError(
        f"host-local: Failed to find address added by container {request.container_id}"
    )
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
                f"host-local: container {request.container_id} ({request.ifname}) holds "
                f"no address in range set {index} ({rangeset})"
            )
        if expected is None:
            continue
        want = {a for a in expected if rangeset.contains(a)}
        if have != want:
            raise CNIError(
                f"host-local: container {request.container_id} ({request.ifname}) holds "
                f"{_join(have)} in range set {index} but prevResult has {_join(want) or 'none'}"
            )


def _prev_result_addresses(config: dict[str, Any]) -> set[IPAddress] | None:
    prev = prev_result(config)
    return None if prev is None else {canonical_ip(ip.address.ip) for ip in prev.ips}


def _join(addresses: set[IPAddress]) -> str:
    return ",".join(str(a) for a in sorted(addresses, key=lambda a: (a.version, int(a))))


def gc(request: Request) -> None:
    """Release every reservation whose attachment is not in cni.dev/valid-attachments
    (or the legacy cni.dev/attachments); a legacy ID-only file stays while any valid
    attachment has its container ID."""
    conf = load_config(request)
    valid = {Attachment(*pair) for pair in valid_attachments(request.config)}
    valid_ids = {a.container_id.strip() for a in valid}
    store = DiskStore(conf.data_dir, conf.network)
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
                log(f"host-local GC {conf.network}: released {reservation.address} ({owner})")
            except CNIError as exc:
                errors.append(exc.msg)
    store.sync()
    if errors:
        raise CNIError(";".join(errors))


def status(request: Request) -> None:
    """Code 50 when some range set has no free address left: an ADD would fail."""
    conf = load_config(request)
    reserved = [r.address for r in DiskStore(conf.data_dir, conf.network).reservations()]
    for index, rangeset in enumerate(conf.range_sets):
        if count_free(rangeset, reserved) <= 0:
            raise PluginNotAvailable(
                f"range set {index} is full: no IP addresses available in range set: {rangeset}"
            )
