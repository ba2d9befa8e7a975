"""Work a plugin may finish after the runtime has its answer.

Destroying a pod's veth makes the kernel wait 10-20 ms for RCU grace periods, and nothing
the runtime does next depends on it once the pod is cut off. A host that keeps running
after it answers (the node agent) collects such work around `dispatch` with
`collect_after_answer` and runs it once the answer is sent. Anywhere else (a plugin
executable, whose runtime waits for it to exit anyway) nobody collects, `can_defer` says
so, and the plugin does the work before answering, as the reference does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from podnet.cni._log import log

Work = Callable[[], None]

_local = threading.local()


def can_defer() -> bool:
    """True when the caller of this thread's request runs `after_answer` work later."""
    return getattr(_local, "work", None) is not None


def after_answer(work: Work) -> None:
    """Run `work` once the answer is sent; at once when nobody collects."""
    pending: list[Work] | None = getattr(_local, "work", None)
    if pending is None:
        work()
    else:
        pending.append(work)


@contextmanager
def collect_after_answer() -> Iterator[list[Work]]:
    """Collect the `after_answer` work of requests run on this thread within the block."""
    outer = getattr(_local, "work", None)
    collected: list[Work] = []
    _local.work = collected
    try:
        yield collected
    finally:
        _local.work = outer


def run_after_answer(collected: list[Work]) -> None:
    """Run collected work in order; a failure is logged and the rest still runs."""
    for work in collected:
        try:
            work()
        except Exception as exc:  # the runtime has its answer: the log is all that is left
            log(f"work after the answer failed: {type(exc).__name__}: {exc}")
