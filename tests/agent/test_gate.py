"""The gate between CNI requests (shared) and the agent's GC (exclusive)."""

from __future__ import annotations

import threading
import time

import pytest

from podnet.agent import Gate, GateBusy


def test_gc_waits_for_requests_in_flight_and_new_requests_wait_for_gc() -> None:
    gate = Gate()
    events: list[str] = []
    request_in = threading.Event()
    finish_request = threading.Event()

    def request() -> None:
        with gate.shared():
            request_in.set()
            finish_request.wait(5)
            events.append("request done")

    def gc() -> None:
        with gate.exclusive():
            events.append("gc runs")
            time.sleep(0.05)
            events.append("gc done")

    def late_request() -> None:
        with gate.shared():
            events.append("late request runs")

    first = threading.Thread(target=request)
    first.start()
    assert request_in.wait(5)
    collector = threading.Thread(target=gc)
    collector.start()
    time.sleep(0.05)
    assert events == []  # GC waits for the request in flight
    late = threading.Thread(target=late_request)
    late.start()
    time.sleep(0.05)
    assert events == []  # and a new request waits behind GC, which asked first
    finish_request.set()
    for thread in (first, collector, late):
        thread.join(5)
    assert events == ["request done", "gc runs", "gc done", "late request runs"]
    assert gate.active == 0


def test_requests_pass_together() -> None:
    gate = Gate()
    inside = threading.Barrier(3, timeout=5)

    def request() -> None:
        with gate.shared():
            inside.wait()  # all three are inside at once, or this times out

    threads = [threading.Thread(target=request) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert not inside.broken


def test_exclusive_gives_up_at_its_deadline_and_lets_requests_through() -> None:
    gate = Gate()
    finish_request = threading.Event()
    request_in = threading.Event()

    def request() -> None:
        with gate.shared():
            request_in.set()
            finish_request.wait(10)

    first = threading.Thread(target=request)
    first.start()
    assert request_in.wait(5)
    with pytest.raises(GateBusy, match="1 request"):
        with gate.exclusive(timeout=0.2):
            pytest.fail("GC ran alongside a request")
    # GC gave up: a new request is not held back behind it
    with gate.shared(timeout=1):
        assert gate.active == 2
    finish_request.set()
    first.join(5)
    with gate.exclusive(timeout=1):
        assert gate.active == 0


def test_shared_gives_up_while_exclusive_holds() -> None:
    gate = Gate()
    with gate.exclusive(timeout=1):
        outcome: list[BaseException] = []

        def request() -> None:
            try:
                with gate.shared(timeout=0.2):
                    pass
            except GateBusy as exc:
                outcome.append(exc)

        thread = threading.Thread(target=request)
        thread.start()
        thread.join(10)
        assert len(outcome) == 1
    with gate.shared(timeout=1):
        pass
