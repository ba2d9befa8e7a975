"""bridge DEL and GC.

DEL is idempotent and best effort: every step runs even when an earlier one failed, and
the first failure is reported at the end. A namespace or interface that is already gone
is success: the address is still released (IPAM DEL) and the masquerade elements still
removed, since they are found by their owner and not through the pod's interface. A path
that is no longer a namespace (the runtime unmounted it but left the file) counts as gone
too; the reference fails there and leaks the address. In an executable, the pod's
interface is destroyed on a thread of its own while the address and the masquerade are
released; where the host defers work (the agent), after the answer (see _teardown).
"""

from __future__ import annotations

from _thread import allocate_lock, start_new_thread

from podnet.cni import (
    CNIError,
    InvalidEnvironment,
    Request,
    log,
    prev_result,
    valid_attachments,
)
from podnet.ipam import IPAddress
from podnet.netlink import NetlinkError, NetnsError, NftError, NotANetns
from podnet.plugins._delegate import delegate
from podnet.plugins.main.bridge._config import owner_tag, parse_config
from podnet.plugins.main.bridge._teardown import (
    cut_off_then_destroy,
    destroy_now,
    wait_for_teardown,
)

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any


def delete(request: Request) -> None:
    config = parse_config(request)
    link_errors: list[CNIError] = []
    errors: list[CNIError] = []

    def attempt(into: list[CNIError], step: Any, *args: Any) -> None:
        try:
            step(*args)
        except CNIError as exc:
            into.append(exc)
        except NftError as exc:
            into.append(CNIError(f"failed to remove masquerade: {exc.strerror}"))
        except NotANetns as exc:
            into.append(InvalidEnvironment(str(exc.strerror)))
        except (NetlinkError, NetnsError) as exc:
            into.append(CNIError(exc.strerror or str(exc)))
        except Exception as exc:  # a bug on the other thread must still reach the runtime
            into.append(CNIError(f"{type(exc).__name__}: {exc}"))

    host = request.host
    wait_for_teardown(host, request.netns, request.ifname)
    removed = None
    if request.netns and host.can_defer:
        attempt(link_errors, cut_off_then_destroy, host, request.netns, request.ifname)
    elif request.netns:
        # Destroying a veth takes the kernel 10-20 ms, nearly all of it waiting for RCU
        # grace periods: the address and the masquerade are released meanwhile. A bare
        # _thread thread, joined through `removed`: the threading module costs a plugin
        # run in-process ~1 ms to import.
        removed = allocate_lock()
        removed.acquire()
        netns, ifname = request.netns, request.ifname

        def remove() -> None:
            try:
                attempt(link_errors, destroy_now, netns, ifname)
            finally:
                removed.release()

        start_new_thread(remove, ())
    try:
        if config.layer3:
            if config.ip_masq:
                from podnet.plugins.main.bridge import _masq  # only a masquerade needs it

                # Before IPAM lets go of the addresses: until then no other pod can own
                # their elements, so none is removed that a new pod just took over.
                owner = owner_tag(request.container_id, request.ifname)
                addresses = _prev_addresses(request.config)
                attempt(errors, _masq.remove_pod, config.network, owner, addresses)
            attempt(errors, delegate, "DEL", config.ipam_type, request.config, request)
    finally:
        if removed is not None:
            removed.acquire()  # the remover is done
    errors[:0] = link_errors
    if errors:
        first = errors[0]
        if len(errors) > 1:
            rest = "; ".join(str(e) for e in errors[1:])
            raise CNIError(
                first.msg, f"{first.details}; also: {rest}".lstrip("; "), code=first.code
            )
        raise first


def _prev_addresses(config: dict[str, Any]) -> list[IPAddress] | None:
    """The pod's addresses from prevResult (runtimes send it to DEL from 0.4.0 on); None
    without one, or with one that cannot be read: then the masquerade table is searched."""
    try:
        prev = prev_result(config)
    except CNIError:
        return None
    return None if prev is None else [ip.address.ip for ip in prev.ips]


def _valid_owners(config: dict[str, Any]) -> set[str]:
    return {owner_tag(container_id, ifname) for container_id, ifname in valid_attachments(config)}


def gc(request: Request) -> None:
    """Forward GC to IPAM, and drop masquerade elements of attachments not in the valid list."""
    config = parse_config(request)
    owners = _valid_owners(request.config)  # without the list, GC refuses rather than wipes
    errors: list[str] = []
    if config.layer3:
        try:
            delegate("GC", config.ipam_type, request.config, request)
        except CNIError as exc:
            errors.append(str(exc))
    from podnet.plugins.main.bridge import _masq

    try:
        removed = _masq.remove_all_but(config.network, owners)
        if removed:
            log(f"bridge GC: removed masquerade of {', '.join(map(str, removed))}")
    except NftError as exc:
        errors.append(f"failed to clean up masquerade: {exc.strerror}")
    if errors:
        raise CNIError("; ".join(errors))
