"""host-local's verbs: ADD, DEL and CHECK as the reference, plus GC and STATUS, which
the reference lacks (containernetworking/plugins#1047). Each reads its config, opens the
network's store on disk and hands both to the allocator (see _allocator)."""

from __future__ import annotations

from podnet.cni import Request, Result, prev_result, valid_attachments
from podnet.ipam import IPAddress, canonical_ip
from podnet.plugins.ipam.host_local import _allocator
from podnet.plugins.ipam.host_local._config import HostLocalConfig, load_config
from podnet.plugins.ipam.host_local._dns import read_resolv_conf
from podnet.plugins.ipam.host_local._store import Attachment, DiskStore

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any


def _store(conf: HostLocalConfig, request: Request) -> DiskStore:
    # A host that lives on (the agent) keeps what it read of the reservations; a plugin
    # process reads each once anyway, and does not import the cache (nor ctypes).
    if not request.host.can_defer:
        return DiskStore(conf.data_dir, conf.network)
    from podnet.plugins.ipam.host_local._cache import ReservationCache

    return DiskStore(conf.data_dir, conf.network, cache=request.host.state.get(ReservationCache))


def _attachment(request: Request) -> Attachment:
    return Attachment(request.container_id, request.ifname)


def add(request: Request) -> Result:
    conf = load_config(request)
    result = Result(cni_version=conf.cni_version, routes=list(conf.routes))
    if conf.resolv_conf:
        result.dns = read_resolv_conf(conf.resolv_conf)
    result.ips = _allocator.allocate(_store(conf, request), conf, _attachment(request))
    return result


def delete(request: Request) -> None:
    conf = load_config(request)
    _allocator.release(_store(conf, request), _attachment(request))


def check(request: Request) -> None:
    """The attachment holds a reservation in every set, and exactly the addresses of
    prevResult that belong to this network's sets (the reference only checks that the
    container holds some address)."""
    conf = load_config(request)
    expected = _prev_result_addresses(request.config)
    _allocator.check(_store(conf, request), conf, _attachment(request), expected)


def _prev_result_addresses(config: dict[str, Any]) -> set[IPAddress] | None:
    prev = prev_result(config)
    return None if prev is None else {canonical_ip(ip.address.ip) for ip in prev.ips}


def gc(request: Request) -> None:
    """Release every reservation whose attachment is not in cni.dev/valid-attachments
    (or the legacy cni.dev/attachments); a legacy ID-only file stays while any valid
    attachment has its container ID."""
    conf = load_config(request)
    valid = {Attachment(*pair) for pair in valid_attachments(request.config)}
    _allocator.collect_garbage(_store(conf, request), conf.network, valid)


def status(request: Request) -> None:
    """Code 50 when some range set has no free address left: an ADD would fail."""
    conf = load_config(request)
    _allocator.check_room(_store(conf, request), conf)
