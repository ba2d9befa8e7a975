"""What the process running a plugin verb provides it: the `Host` every request carries
(`Request.host`), so a verb reads nothing from thread-locals or module globals.

- Work after the answer. Destroying a pod's veth makes the kernel wait 10-20 ms for RCU
  grace periods, and nothing the runtime does next depends on it once the pod is cut off.
  A host that keeps running after it answers (the node agent) builds its hosts with
  `defers=True`, takes the work with `take_after_answer` and runs it once the answer is
  sent. Anywhere else (a plugin executable, whose runtime waits for it to exit anyway)
  `can_defer` is False and the plugin does the work before answering, as the reference
  does.
- The warm netlink handle for the node's namespace (`node_rtnl`), opened on first use and
  kept for the host's life: an agent worker serves every pod through the same socket.
- `state`: what plugins keep across requests (the masquerade tables declared, the veths
  still being destroyed), shared by every host built over one `HostState`.
- `plugin_exec`: the `Exec` a plugin delegates through (libcni's invoke.Exec); None for
  the plugin layer's default, which runs podnet's own plugins in this process (see
  podnet.plugins._delegate).
- Work beside the caller (`beside`): a verb that waits on two independent things (bridge:
  IPAM's reservation on the disk, the veth pair in the kernel) hands one to a helper
  thread of its host, built with `helper=True` (the agent's), and waits only for the
  longer. Elsewhere the work runs at once, in the caller's thread.

A host belongs to one thread at a time (its netlink socket and its deferred work are not
shared; its helper thread only runs what that thread hands it, and starts from it when
the host is built, so in its network namespace); the agent builds one `HostState` and
one `Host` per worker over it. The in-process path (an executable, `dispatch` without a
host) builds a fresh default host per request.
"""

from __future__ import annotations

from _thread import allocate_lock
from collections.abc import Callable
from types import TracebackType

from podnet.cni._log import log

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")
    from podnet.cni._invoke import Exec
    from podnet.cni._trace import Trace
    from podnet.netlink import Rtnl

Work = Callable[[], None]


class Pending:
    """The outcome of work run beside the caller: `wait()` returns its value or raises
    its exception, in the caller's thread."""

    def __init__(self) -> None:
        self._done = allocate_lock()
        self._done.acquire()  # released once the outcome is in
        self._value: object = None
        self._error: BaseException | None = None

    def run(self, work: Callable[[], object]) -> None:
        try:
            self._value = work()
        except BaseException as exc:  # handed to the waiter, whatever it is
            self._error = exc
        finally:
            self._done.release()

    def wait(self) -> object:
        """The work's value, once it is done (no deadline of its own: the request's
        watchdog answers the runtime when the whole request runs late, as it would if
        the work ran in the caller's thread)."""
        with self._done:
            pass
        if self._error is not None:
            raise self._error
        return self._value


class _Helper:
    """One thread that runs the work its host's thread hands it, one piece at a time."""

    def __init__(self) -> None:
        from _queue import SimpleQueue  # the C queue: no threading module
        from _thread import start_new_thread

        self._queue: SimpleQueue[tuple[Pending, Callable[[], object]] | None] = SimpleQueue()
        start_new_thread(self._loop, ())

    def submit(self, work: Callable[[], object]) -> Pending:
        pending = Pending()
        self._queue.put((pending, work))
        return pending

    def stop(self) -> None:
        self._queue.put(None)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            pending, work = item
            pending.run(work)


class HostState:
    """Plugin state kept across requests, one object per kind, made on first use by
    calling the kind without arguments. Each kind guards itself against concurrent use."""

    def __init__(self) -> None:
        self._items: dict[type, object] = {}
        self._lock = allocate_lock()  # threading.Lock, without importing threading (~1 ms)

    def get(self, kind: type[T]) -> T:
        item = self._items.get(kind)
        if item is None:
            with self._lock:
                item = self._items.get(kind)
                if item is None:
                    item = self._items[kind] = kind()
        assert isinstance(item, kind)
        return item

    def close(self) -> None:
        """Let go of what the kinds hold open (descriptors); a kind used again after
        this opens anew."""
        with self._lock:
            items = list(self._items.values())
        for item in items:
            close = getattr(item, "close", None)
            if close is not None:
                close()


class Host:
    """The context of the requests one thread runs. Use as a context manager, or `close()`."""

    def __init__(
        self,
        state: HostState | None = None,
        *,
        defers: bool = False,
        plugin_exec: Exec | None = None,
        helper: bool = False,
    ) -> None:
        self.state = state if state is not None else HostState()
        self.plugin_exec = plugin_exec
        self._later: list[Work] | None = [] if defers else None
        # Started now, from the thread that will hand it work, so in that thread's network
        # namespace; an agent's thread count then stays what it was after start-up.
        self._helper = _Helper() if helper else None
        self._node: tuple[tuple[int, int], Rtnl] | None = None
        # The trace of the request this host serves now, when its server keeps traces.
        self.trace: Trace | None = None

    @property
    def can_defer(self) -> bool:
        """True when this host runs `after_answer` work after answering."""
        return self._later is not None

    def after_answer(self, work: Work) -> None:
        """Run `work` once the answer is sent; at once when this host does not defer."""
        if self._later is None:
            work()
        else:
            self._later.append(work)

    def take_after_answer(self) -> list[Work]:
        """The work left for after the answer since the last call, in order."""
        if self._later is None:
            return []
        taken, self._later = self._later, []
        return taken

    def beside(self, work: Callable[[], object]) -> Pending:
        """Run `work` on this host's helper thread while the caller goes on; at once in
        the caller's thread when the host has no helper. The caller must `wait()`."""
        if self._helper is None:
            pending = Pending()
            pending.run(work)
            return pending
        return self._helper.submit(work)

    def node_rtnl(self) -> Rtnl:
        """The host's handle for the namespace the calling thread is in; the caller must
        not close it. A thread now in another namespace than when it was opened gets a
        new one."""
        from podnet.netlink import Rtnl, netns_id

        namespace = netns_id()
        if self._node is None or self._node[0] != namespace:
            if self._node is not None:
                self._node[1].close()
            self._node = (namespace, Rtnl.open())
        return self._node[1]

    def close(self) -> None:
        if self._node is not None:
            self._node[1].close()
            self._node = None
        if self._helper is not None:
            self._helper.stop()
            self._helper = None

    def __enter__(self) -> Host:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def run_after_answer(collected: list[Work]) -> None:
    """Run collected work in order; a failure is logged and the rest still runs."""
    for work in collected:
        try:
            work()
        except Exception as exc:  # the runtime has its answer: the log is all that is left
            log(f"work after the answer failed: {type(exc).__name__}: {exc}")
