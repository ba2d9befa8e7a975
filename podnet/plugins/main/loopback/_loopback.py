"""loopback: brings `lo` up in the pod (whatever CNI_IFNAME says) and reports it."""

from __future__ import annotations

import errno

from podnet.cni import (
    CNIError,
    Interface,
    InvalidEnvironment,
    IPConfig,
    Request,
    Result,
    prev_result,
)
from podnet.netlink import (
    LinkNotFound,
    NetlinkError,
    NetnsError,
    NotANetns,
    get_link,
    list_addresses,
    open_rtnl,
    set_link,
)

LOOPBACK = "lo"


def _netlink_failure(what: str, exc: OSError) -> CNIError:
    if isinstance(exc, NotANetns):
        return InvalidEnvironment(f"{what}: {exc.strerror}")
    return CNIError(f"{what}: {exc.strerror}")


def add(request: Request) -> Result:
    prev = prev_result(request.config)
    try:
        with open_rtnl(request.netns) as pod:
            lo = get_link(pod, LOOPBACK)
            set_link(pod, lo.index, up=True)
            addresses = [a.address for a in list_addresses(pod, lo.index)]
    except (NetnsError, NetlinkError) as exc:
        raise _netlink_failure(f"failed to set up {LOOPBACK} in {request.netns}", exc) from exc
    for address in addresses:
        if not address.ip.is_loopback:
            raise CNIError(f'loopback interface found with non-loopback address "{address.ip}"')
    if prev is not None:
        return prev  # chained: pass the previous result through, as the reference
    result = Result(
        interfaces=[Interface(name=LOOPBACK, mac="00:00:00:00:00:00", sandbox=request.netns)]
    )
    # the first address of each IP version, as the reference reports it
    for version in (4, 6):
        first = next((a for a in addresses if a.version == version), None)
        if first is not None:
            result.ips.append(IPConfig(address=first, interface=0))
    return result


def delete(request: Request) -> None:
    if not request.netns:
        return
    try:
        with open_rtnl(request.netns) as pod:
            set_link(pod, get_link(pod, LOOPBACK).index, up=False)
    except NetnsError as exc:
        # the runtime may call DEL again, or after the namespace is gone
        if isinstance(exc, NotANetns) or exc.errno not in (errno.ENOENT, errno.EINVAL):
            raise _netlink_failure(f"failed to open netns {request.netns!r}", exc) from exc
    except LinkNotFound:
        pass
    except NetlinkError as exc:
        raise _netlink_failure(f"failed to set {LOOPBACK} down", exc) from exc


def check(request: Request) -> None:
    try:
        with open_rtnl(request.netns) as pod:
            lo = get_link(pod, LOOPBACK)
    except (NetnsError, NetlinkError) as exc:
        raise _netlink_failure(f"failed to look up {LOOPBACK} in {request.netns}", exc) from exc
    if not lo.admin_up:
        raise CNIError("loopback interface is down")
