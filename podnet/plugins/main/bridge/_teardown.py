"""The pod's interface on DEL: destroyed before the answer, or after it in the agent.

Destroying a veth takes the kernel 10-20 ms, nearly all of it waiting for RCU grace
periods. Where the host runs work after answering (the node agent, see
podnet.cni.Host.can_defer), DEL cuts the pod off first (its interface down: the peer
loses carrier and the bridge stops forwarding to that port), answers, and destroys the
veth then; a later request for the same namespace and interface waits for that
(`wait_for_teardown`, through the `PendingTeardowns` in the host's state), so an ADD right
after a DEL never finds the old interface. In an executable the veth is destroyed before
the answer, as the reference does.
"""

from __future__ import annotations

import errno
from _thread import allocate_lock

from podnet.cni import CNIError, Host, log
from podnet.netlink import (
    LinkNotFound,
    NetlinkError,
    NetnsError,
    Rtnl,
    delete_link,
    delete_link_named,
    find_link,
    netns_id,
    open_rtnl,
    set_link,
)

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    import threading

_GONE = (errno.ENOENT, errno.EINVAL)
# A destroy the kernel has not finished within this is logged and no longer waited for.
_WAIT_SECONDS = 10.0


class PendingTeardowns:
    """The interfaces a host cut off and has yet to destroy, by (namespace device,
    inode, ifname), each with the event set once it is gone. Safe across threads."""

    def __init__(self) -> None:
        self.events: dict[tuple[int, int, str], threading.Event] = {}
        self.lock = allocate_lock()  # threading.Lock, without importing threading (~1 ms)


def _key(netns: str, ifname: str) -> tuple[int, int, str] | None:
    """The namespace by identity, not by path: two paths can name one namespace."""
    try:
        return (*netns_id(netns), ifname)
    except OSError:
        return None  # no namespace there: nothing of it can be pending


def wait_for_teardown(host: Host, netns: str, ifname: str) -> None:
    """Return once no destroy of `ifname` in `netns` is pending on `host`'s state."""
    pending = host.state.get(PendingTeardowns)
    if not pending.events:
        return
    key = _key(netns, ifname) if netns else None
    if key is None:
        return
    with pending.lock:
        event = pending.events.get(key)
    if event is not None and not event.wait(_WAIT_SECONDS):
        log(f"bridge: {ifname} in {netns} still being destroyed after {_WAIT_SECONDS:g}s")


def _open_pod(netns: str) -> Rtnl | None:
    """A handle in the pod's namespace; None when the namespace is gone."""
    try:
        return open_rtnl(netns)
    except NetnsError as exc:
        if exc.errno not in _GONE:
            raise CNIError(f"failed to open netns {netns!r}: {exc.strerror}") from exc
        log(f"bridge DEL: netns {netns} is gone ({exc.strerror})")
        return None


def destroy_now(netns: str, ifname: str) -> None:
    """Destroy the pod's interface before returning."""
    pod = _open_pod(netns)
    if pod is None:
        return
    with pod:
        try:
            delete_link_named(pod, ifname)
        except LinkNotFound:
            pass  # already gone
        except NetlinkError as exc:
            raise CNIError(f"failed to delete {ifname!r}: {exc.strerror}") from exc


def cut_off_then_destroy(host: Host, netns: str, ifname: str) -> None:
    """Take the pod's interface down now and destroy it after `host` answers. Pending
    from the start, so a request for the same interface never sees it half done."""
    pod = _open_pod(netns)
    if pod is None:
        return
    pending = host.state.get(PendingTeardowns)
    key = _key(netns, ifname)
    import threading  # only a host that defers (the agent) gets here

    done = threading.Event()
    if key is not None:
        with pending.lock:
            pending.events[key] = done

    def finish() -> None:
        pod.close()
        if key is not None:
            with pending.lock:
                if pending.events.get(key) is done:
                    del pending.events[key]
        done.set()

    try:
        link = find_link(pod, ifname)
        if link is not None:
            set_link(pod, link.index, up=False)
    except NetlinkError as exc:
        finish()
        raise CNIError(f"failed to take {ifname!r} down: {exc.strerror}") from exc
    if link is None:
        finish()  # already gone
        return
    index = link.index

    def destroy() -> None:
        try:
            delete_link(pod, index)
        except LinkNotFound:
            pass
        except NetlinkError as exc:
            log(f"bridge DEL: failed to delete {ifname!r} in {netns} after answering: {exc}")
        finally:
            finish()

    host.after_answer(destroy)
