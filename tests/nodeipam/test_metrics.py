"""Prometheus metrics of the controller."""

from __future__ import annotations

import httpx

from podnet.nodeipam import Controller, MetricsServer, parse_config, render_metrics
from podnet.store import Nodes, Store


def test_metrics_text_and_server(store: Store) -> None:
    controller = Controller(
        store, parse_config("10.0.0.0/22", service_cluster_ip_range="10.0.0.0/24")
    )
    for name in ("a", "b", "c", "d"):
        Nodes(store).register(name)
    controller.start()
    try:
        text = render_metrics(controller)
        lines = set(text.splitlines())
        assert 'podnet_nodeipam_cidrset_allocated_blocks{cidr="10.0.0.0/22"} 4' in lines
        assert 'podnet_nodeipam_cidrset_free_blocks{cidr="10.0.0.0/22"} 0' in lines
        assert 'podnet_nodeipam_cidrset_max_blocks{cidr="10.0.0.0/22"} 4' in lines
        assert "podnet_nodeipam_waiting_nodes 1" in lines
        assert "podnet_nodeipam_allocations_total 3" in lines
        assert "# TYPE podnet_nodeipam_allocations_total counter" in lines

        server = MetricsServer(controller, port=0).start()
        try:
            response = httpx.get(f"http://127.0.0.1:{server.port}/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert "podnet_nodeipam_waiting_nodes 1" in response.text
            assert httpx.get(f"http://127.0.0.1:{server.port}/other").status_code == 404
        finally:
            server.stop()
    finally:
        controller.close()
