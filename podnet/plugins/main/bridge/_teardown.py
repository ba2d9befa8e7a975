"""The pod's interface on DEL: destroyed before the answer, or after it in the agent.

Destroying a veth takes the kernel 10-20 ms, nearly all of it waiting for RCU grace
periods. Where the host runs work after answering (the node agent, see
podnet.cni.after_answer), DEL cuts the pod off first (its interface down: the peer loses
carrier and the bridge stops forwarding to that port), answers, and destroys the veth
then; a later request for the same namespace and interface waits for that
(`wait_for_teardown`), so an ADD right after a DEL never finds the old interface. In an
executable the veth is destroyed before the answer, as the reference does.
"""

from __future__ import annotations

import errno
import threading

from podnet.cni import CNIError, after_answer, log
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

_GONE = (errno.ENOENT, errno.EINVAL)
# A destroy the kernel has not finished within this is logged and no longer waited for.
_WAIT_SECONDS = 10.0

_pending: dict[tuple[int, int, str], threading.Event] = {}
_pending_lock = threading.Lock()


def _key(netns: str, ifname: str) -> tuple[int, int, str] | None:
    """The namespace by identity, not by path: two paths can name one namespace."""
    try:
        return (*netns_id(netns), ifname)
    except OSError:
        return None  # no namespace there: nothing of it can be pending


def wait_for_teardown(netns: str, ifname: str) -> None:
    """Return once no destroy of `ifname` in `netns` is pending."""
    if not _pending:
        return
    key = _key(netns, ifname) if netns else None
    if key is None:
        return
    with _pending_lock:
        event = _pending.get(key)
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


def cut_off_then_destroy(netns: str, ifname: str) -> None:
    """Take the pod's interface down now and destroy it after the answer. Pending from
    the start, so a request for the same interface never sees it half done."""
    pod = _open_pod(netns)
    if pod is None:
        return
    key = _key(netns, ifname)
    done = threading.Event()
    if key is not None:
        with _pending_lock:
            _pending[key] = done

    def finish() -> None:
        pod.close()
        if key is not None:
            with _pending_lock:
                if _pending.get(key) is done:
                    del _pending[key]
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

    after_answer(destroy)
