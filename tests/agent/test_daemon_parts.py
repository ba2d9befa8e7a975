"""The agent's health endpoints and the network config in the store."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from podnet.agent import ConfigError
from podnet.agent._health import HealthServer
from podnet.agent._netconf_store import read_network_config, write_network_config
from podnet.store import open_store


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


def test_network_config_round_trip(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path / 'c.db'}")
    try:
        assert read_network_config(store) is None
        write_network_config(store, {"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}})
        config = read_network_config(store)
        assert config is not None and str(config.network) == "10.244.0.0/16"
        write_network_config(store, {"Network": "10.245.0.0/16", "Backend": {"Type": "host-gw"}})
        config = read_network_config(store)
        assert config is not None and config.backend.type == "host-gw"
        with pytest.raises(ConfigError):
            write_network_config(store, {"Backend": {"Type": "vxlan"}})
        config = read_network_config(store)
        assert config is not None and str(config.network) == "10.245.0.0/16"  # unchanged
    finally:
        store.close()
