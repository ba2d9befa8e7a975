"""The node agent: its CNI socket answers, its health endpoints say it is alive and ready."""

from __future__ import annotations

import http.client
import os
import socket
import stat

from podnet.doctor._facts import Facts
from podnet.doctor._finding import Finding, ok, problem

PROBE_TIMEOUT = 2.0


def check_agent(facts: Facts) -> list[Finding]:
    config = facts.config
    evidence: list[str] = []
    wrong: list[str] = []
    path = config.cni_socket
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            wrong.append(f"{path} is not a socket")
        else:
            _connect(path)
            evidence.append(f"{path} accepts connections")
    except OSError as exc:
        wrong.append(f"{path}: {exc.strerror or exc}")
    if config.healthz_port is not None:
        for endpoint in ("/healthz", "/readyz"):
            answer = _get(config.healthz_address, config.healthz_port, endpoint)
            where = f"http://{config.healthz_address}:{config.healthz_port}{endpoint}"
            (evidence if answer == "200" else wrong).append(f"{where}: {answer}")
    if wrong:
        return [
            problem(
                "agent",
                "the node agent is not serving: pods fall back to the slower in-process "
                "plugins, and nothing keeps routes, subnet.env or GC up to date",
                evidence=(*wrong, *evidence),
                fix="start it (podnet agent run, or the kube-podnet DaemonSet) and read its log",
            )
        ]
    return [ok("agent", "the node agent is serving", *evidence)]


def _connect(path: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(PROBE_TIMEOUT)
        sock.connect(path)


def _get(host: str, port: int, path: str) -> str:
    """The status code as text, or why there is none."""
    conn = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT)
    try:
        conn.request("GET", path)
        return str(conn.getresponse().status)
    except OSError as exc:
        return f"no answer ({exc.strerror or exc})"
    finally:
        conn.close()
