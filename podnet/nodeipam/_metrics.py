"""Prometheus text metrics for the controller, served on an optional port (GET /metrics)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from podnet.nodeipam._cidrset import CIDRSet
from podnet.nodeipam._controller import Counters

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Measured(Protocol):
    """What both controllers (on the store, through the API) show."""

    sets: list[CIDRSet]
    counters: Counters

    @property
    def waiting(self) -> Sequence[str]: ...


def render_metrics(controller: Measured) -> str:
    """The controller's state in the Prometheus text exposition format."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, int]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {value}" for labels, value in samples)

    sets = list(controller.sets)
    per_cidr = [(f'{{cidr="{s.cluster_cidr}"}}', s) for s in sets]
    family(
        "podnet_nodeipam_cidrset_allocated_blocks", "gauge",
        "Node-sized blocks taken (by nodes, claims in flight, and the service range).",
        [(labels, s.allocated) for labels, s in per_cidr],
    )  # fmt: skip
    family(
        "podnet_nodeipam_cidrset_free_blocks", "gauge",
        "Node-sized blocks still free.",
        [(labels, s.free) for labels, s in per_cidr],
    )  # fmt: skip
    family(
        "podnet_nodeipam_cidrset_max_blocks", "gauge",
        "Node-sized blocks in the cluster CIDR.",
        [(labels, s.max_blocks) for labels, s in per_cidr],
    )  # fmt: skip
    family(
        "podnet_nodeipam_waiting_nodes", "gauge",
        "Nodes without a podCIDR because no block is free.",
        [("", len(controller.waiting))],
    )  # fmt: skip
    counters = controller.counters
    for name, value, help_text in (
        ("allocations_total", counters.allocations, "podCIDRs written to nodes."),
        ("releases_total", counters.releases, "Deleted nodes whose blocks were released."),
        ("cas_conflicts_total", counters.cas_conflicts, "Node writes that lost a CAS race."),
        ("claim_conflicts_total", counters.claim_conflicts, "Blocks found claimed by another."),
        ("resyncs_total", counters.resyncs, "Full relists of nodes and claims."),
    ):
        family(f"podnet_nodeipam_{name}", "counter", help_text, [("", value)])
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves `render_metrics(controller)` on address:port from a daemon thread."""

    def __init__(self, controller: Measured, *, port: int, address: str = "127.0.0.1") -> None:
        owner = controller

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = render_metrics(owner).encode()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes every few seconds would drown the controller's own log

        self._server = ThreadingHTTPServer((address, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
