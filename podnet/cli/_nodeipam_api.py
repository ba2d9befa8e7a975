"""`podnet nodeipam run` through the Kubernetes API: credentials, leader election, and the
controller while this replica leads.

    podnet nodeipam run --kubeconfig FILE | (in a pod: the service account)
        --cluster-cidr ... [--leader-elect=true|false]
        [--leader-elect-lease-duration 15s] [--leader-elect-renew-deadline 10s]
        [--leader-elect-retry-period 2s] [--leader-elect-resource-name podnet-nodeipam]
        [--leader-elect-resource-namespace kube-system]

The leader-election flags are kube-controller-manager's, with its defaults. A replica
that loses its lease exits with status 1 (as kube-controller-manager does), so its
Deployment starts it again as a candidate; SIGTERM releases the lease first.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
from typing import Any

from podnet.nodeipam import (
    DEFAULT_LEASE_NAME,
    DEFAULT_LEASE_NAMESPACE,
    KubeController,
    LeaderElectionConfig,
    LeaderElector,
    MetricsServer,
    NodeIPAMConfig,
    default_identity,
    kube_client,
)

log = logging.getLogger("podnet.nodeipam")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str) -> float:
    """A Go duration as kube-controller-manager's flags take them: 15s, 500ms, 1m30s."""
    text = text.strip()
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (examples: 15s, 500ms, 1m)")
    return total


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "t"):
        return True
    if lowered in ("false", "0", "f"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r} (true or false)")


def add_api_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", metavar="FILE",
        help="talk to this cluster's API server (default: the pod's service account when "
        "KUBERNETES_SERVICE_HOST is set, else the podnet store, --store)",
    )  # fmt: skip
    parser.add_argument(
        "--leader-elect", type=boolean, nargs="?", const=True, default=True, metavar="BOOL",
        help="elect one leader through a Lease before allocating (default true; API only)",
    )  # fmt: skip
    for flag, default, what in (
        ("--leader-elect-lease-duration", "15s", "how long a candidate waits after the last "
         "renewal it saw before taking over"),
        ("--leader-elect-renew-deadline", "10s", "how long the leader tries to renew "
         "before it gives up leading"),
        ("--leader-elect-retry-period", "2s", "how often candidates try and the leader renews"),
    ):  # fmt: skip
        parser.add_argument(
            flag, type=duration, default=duration(default), metavar="DURATION",
            help=f"{what} (default {default})",
        )  # fmt: skip
    parser.add_argument("--leader-elect-resource-name", default=DEFAULT_LEASE_NAME)
    parser.add_argument("--leader-elect-resource-namespace", default=DEFAULT_LEASE_NAMESPACE)


def run_through_api(args: argparse.Namespace, config: NodeIPAMConfig, stop: threading.Event) -> int:
    """Serve until `stop` (0) or until the lease is lost (1)."""
    election: LeaderElectionConfig | None = None
    if args.leader_elect:
        election = LeaderElectionConfig(
            identity=default_identity(),
            name=args.leader_elect_resource_name,
            namespace=args.leader_elect_resource_namespace,
            lease_duration=args.leader_elect_lease_duration,
            renew_deadline=args.leader_elect_renew_deadline,
            retry_period=args.leader_elect_retry_period,
        )
    client = kube_client(args.kubeconfig)
    controller = KubeController(client, config)
    metrics = _metrics(args, controller)
    renewing: threading.Thread | None = None
    try:
        lost = threading.Event()
        if election is not None:
            # The lease has its own client: its renewals never queue behind patches.
            lease_client = kube_client(args.kubeconfig, timeout=election.renew_deadline / 2)
            elector = LeaderElector(lease_client, election)
            log.info("leader election: I am %s", election.identity)
            renewing = elector.run(stop, lost)
            if renewing is None:
                return 0
        serving = threading.Event()
        watcher = threading.Thread(target=_stop_when, args=(stop, lost, serving), daemon=True)
        watcher.start()
        controller.run(serving)
        if lost.is_set():
            print("podnet: leaderelection lost", file=sys.stderr, flush=True)
            return 1
        if renewing is not None:
            renewing.join(timeout=5)  # it releases the lease on its way out
        return 0
    finally:
        if metrics is not None:
            metrics.stop()


def _stop_when(stop: threading.Event, lost: threading.Event, serving: threading.Event) -> None:
    while not serving.is_set():
        if stop.wait(0.1) or lost.is_set():
            serving.set()


def _metrics(args: Any, controller: KubeController) -> MetricsServer | None:
    if args.metrics_port is None:
        return None
    server = MetricsServer(controller, port=args.metrics_port, address=args.metrics_address)
    log.info("metrics on http://%s:%d/metrics", args.metrics_address, server.port)
    return server.start()
