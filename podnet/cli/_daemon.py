"""What every long-running `podnet ... run` command sets up before it serves: log lines
on stderr with a timestamp (the lab and kube-style supervisors keep stderr), and a stop
event that SIGTERM and SIGINT set, so the daemon winds down through its own `finally`."""

from __future__ import annotations

import logging
import signal
import sys
import threading

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
