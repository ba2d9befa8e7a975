"""The agent's health endpoints."""

from __future__ import annotations

import http.client

from podnet.agent._health import HealthServer


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_health_endpoints() -> None:
    ready = [False]
    server = HealthServer(
        "127.0.0.1", 0, ready=lambda: ready[0], metrics=lambda: {"podnet_agent_peers": 2.0}
    )
    server.start()
    try:
        assert get(server.port, "/healthz") == (200, "ok\n")
        assert get(server.port, "/readyz")[0] == 503
        ready[0] = True
        assert get(server.port, "/readyz") == (200, "ok\n")
        assert get(server.port, "/metrics") == (200, "podnet_agent_peers 2\n")
        assert get(server.port, "/nope")[0] == 404
    finally:
        server.stop()
