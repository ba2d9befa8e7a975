"""The lab's restarter: what the kubelet does for a DaemonSet's agent pod or the
Deployment of a controller, for the lab's agents, nodeipam controller and etcd. A daemon
that dies (a crash, kill -9) is started again from its recipe (`Supervisor.spawn(...,
restart=True)`): at once the first time, then after a back-off that doubles with every
crash in a row (BACKOFF_BASE, 2x, ... up to BACKOFF_MAX: kubelet's CrashLoopBackOff,
scaled down from its 10 s .. 5 min to suit a lab), and that is forgotten once the daemon
has run RESET_AFTER without dying.

The restarter is a daemon of the lab itself (`podnet lab supervise --dir`, started by
`lab up`). What it sees is written to restarts.json after every change, for `lab get
nodes`: per daemon, its state (Running, CrashLoopBackOff) and restart count."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from podnet.cni import atomic_write
from podnet.lab._supervise import Supervisor

BACKOFF_BASE = 1.0
BACKOFF_MAX = 30.0
RESET_AFTER = 60.0
POLL_INTERVAL = 0.2
RESTARTER = "restarter"  # the restarter's own name among the lab's processes
STATUS_FILE = "restarts.json"
RUNNING = "Running"
BACKING_OFF = "CrashLoopBackOff"


def backoff(crashes_in_a_row: int) -> float:
    """Seconds to wait before the restart after that many crashes in a row."""
    if crashes_in_a_row <= 1:
        return 0.0
    return min(BACKOFF_BASE * 2.0 ** (crashes_in_a_row - 2), BACKOFF_MAX)


@dataclass
class DaemonStatus:
    restarts: int = 0
    in_a_row: int = 0  # crashes since it last ran RESET_AFTER
    state: str = RUNNING
    since: float = 0.0  # monotonic start of the current run
    restart_at: float | None = None  # monotonic; set while it is down
    last_exit: str = ""  # UTC, when it was last found dead

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "restarts": self.restarts, "lastExit": self.last_exit}


def status_path(lab_dir: str) -> str:
    return os.path.join(lab_dir, STATUS_FILE)


def read_status(lab_dir: str) -> dict[str, dict[str, Any]]:
    """What the restarter last wrote: daemon name -> {state, restarts, lastExit}."""
    try:
        with open(status_path(lab_dir)) as handle:
            data = json.load(handle)
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class Restarter:
    def __init__(self, lab_dir: str) -> None:
        self.lab_dir = lab_dir
        self.supervisor = Supervisor(lab_dir)
        self.daemons: dict[str, DaemonStatus] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(POLL_INTERVAL):
            if self.round():
                self._write_status()

    def round(self) -> bool:
        """One look at every daemon; True when something changed."""
        now = time.monotonic()
        names = self.supervisor.restartable()
        changed = False
        for gone in set(self.daemons) - set(names):  # stopped on purpose
            del self.daemons[gone]
            changed = True
        for what in names:
            if what not in self.daemons:
                self.daemons[what] = DaemonStatus(since=now)
                changed = True
            changed |= self._look_at(what, self.daemons[what], now)
        return changed

    def _look_at(self, what: str, status: DaemonStatus, now: float) -> bool:
        if self.supervisor.alive(what):
            if status.in_a_row and now - status.since > RESET_AFTER:
                status.in_a_row = 0
            if status.restart_at is not None or status.state != RUNNING:
                status.restart_at, status.state = None, RUNNING  # started by someone else
                return True
            return False
        if status.restart_at is None:  # just found dead
            status.in_a_row += 1
            status.restart_at = now + backoff(status.in_a_row)
            status.last_exit = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            status.state = BACKING_OFF if status.restart_at > now else status.state
        if now < status.restart_at:
            return True
        pid = self.supervisor.respawn(what)
        status.restart_at, status.state, status.since = None, RUNNING, now
        if pid is not None:
            status.restarts += 1
        else:
            status.in_a_row = max(0, status.in_a_row - 1)  # it was (re)started meanwhile
        return True

    def _write_status(self) -> None:
        data = {what: s.to_json() for what, s in sorted(self.daemons.items())}
        atomic_write(status_path(self.lab_dir), json.dumps(data, indent=1).encode())


def run_restarter(lab_dir: str) -> int:
    """The body of `podnet lab supervise`: until SIGTERM."""
    restarter = Restarter(lab_dir)
    signal.signal(signal.SIGTERM, lambda *_: restarter.stopped.set())
    signal.signal(signal.SIGINT, lambda *_: restarter.stopped.set())
    restarter.run()
    return 0
