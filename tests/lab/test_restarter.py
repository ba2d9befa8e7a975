"""The lab's restarter on real processes (`sleep` daemons spawned as the lab spawns its
own): a daemon killed -9 comes back, crashes in a row back off, a daemon stopped on
purpose stays stopped, and restarts.json says what happened."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from podnet.lab import _restarter
from podnet.lab._restarter import BACKING_OFF, RUNNING, Restarter, backoff, read_status
from podnet.lab._supervise import Supervisor


def test_backoff_doubles_from_the_second_crash_and_is_capped() -> None:
    delays = [backoff(n) for n in range(1, 10)]
    assert delays[:5] == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert max(delays) == _restarter.BACKOFF_MAX


@pytest.fixture
def restarter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Restarter]:
    monkeypatch.setattr(_restarter, "BACKOFF_BASE", 0.5)
    keeper = Restarter(str(tmp_path / "lab"))
    thread = threading.Thread(target=keeper.run, daemon=True)
    thread.start()
    try:
        yield keeper
    finally:
        keeper.stopped.set()
        thread.join(5)
        keeper.supervisor.stop_all(timeout=2)


def pid_of(supervisor: Supervisor, what: str) -> int | None:
    return supervisor.our_pid(supervisor.pid_file(what))


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_a_killed_daemon_is_started_again_with_back_off(restarter: Restarter) -> None:
    supervisor = restarter.supervisor
    log = supervisor.log_path("sleeper")
    supervisor.spawn("sleeper", ["sleep", "300"], log, restart=True)
    first = pid_of(supervisor, "sleeper")
    assert first is not None

    os.kill(first, signal.SIGKILL)
    wait_for(lambda: pid_of(supervisor, "sleeper") not in (None, first))
    second = pid_of(supervisor, "sleeper")
    wait_for(lambda: read_status(supervisor.lab_dir).get("sleeper", {}).get("restarts") == 1)

    # The second crash in a row waits BACKOFF_BASE, seen as CrashLoopBackOff meanwhile.
    assert second is not None
    os.kill(second, signal.SIGKILL)
    wait_for(lambda: read_status(supervisor.lab_dir)["sleeper"]["state"] == BACKING_OFF)
    assert not supervisor.alive("sleeper")
    wait_for(lambda: pid_of(supervisor, "sleeper") not in (None, second))
    wait_for(lambda: read_status(supervisor.lab_dir)["sleeper"]["restarts"] == 2)
    status = read_status(supervisor.lab_dir)["sleeper"]
    assert status["state"] == RUNNING and status["lastExit"]


def test_a_daemon_stopped_on_purpose_stays_stopped(restarter: Restarter) -> None:
    supervisor = restarter.supervisor
    supervisor.spawn("sleeper", ["sleep", "300"], supervisor.log_path("sleeper"), restart=True)
    supervisor.spawn("plain", ["sleep", "300"], supervisor.log_path("plain"))
    wait_for(lambda: "sleeper" in read_status(supervisor.lab_dir))
    supervisor.stop("sleeper", timeout=2)
    plain = pid_of(supervisor, "plain")
    assert plain is not None
    os.kill(plain, signal.SIGKILL)  # spawned without restart: not the restarter's
    time.sleep(1.0)  # several rounds
    assert not supervisor.alive("sleeper")
    assert not supervisor.alive("plain")
    assert "sleeper" not in read_status(supervisor.lab_dir)


def test_a_restart_by_hand_is_not_counted(restarter: Restarter) -> None:
    supervisor = restarter.supervisor
    log = supervisor.log_path("sleeper")
    supervisor.spawn("sleeper", ["sleep", "300"], log, restart=True)
    wait_for(lambda: "sleeper" in read_status(supervisor.lab_dir))
    for _ in range(3):  # what Lab.restart_agent does
        supervisor.stop("sleeper", timeout=2)
        supervisor.spawn("sleeper", ["sleep", "300"], log, restart=True)
    time.sleep(1.0)
    assert read_status(supervisor.lab_dir)["sleeper"]["restarts"] == 0
    assert len(supervisor.pid_files()) == 1
