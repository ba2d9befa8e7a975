"""The etcd a lab can run as its store: one member on the control-plane address, inside
the lab (`podnet lab up --store etcd`)."""

from __future__ import annotations

import http.client
import time

from podnet.lab._errors import LabError
from podnet.lab._supervise import Supervisor
from podnet.lab._topology import CONTROL_PLANE
from podnet.netlink import run_in_netns
from podnet.store import PROGRESS_NOTIFY_INTERVAL, LocalEtcd

ETCD_PORT = 2379
ETCD = "etcd"  # the daemon's name among the lab's processes


def etcd_url() -> str:
    return f"etcd://{CONTROL_PLANE.ip}:{ETCD_PORT}"


def start_etcd(supervisor: Supervisor, netns: str, data_dir: str, timeout: float) -> None:
    """Start etcd in the control-plane namespace `netns` and wait until it is healthy."""
    peer = f"http://{CONTROL_PLANE.ip}:{ETCD_PORT + 1}"
    client = f"http://{CONTROL_PLANE.ip}:{ETCD_PORT}"
    argv = [
        "nsenter",
        f"--net={netns}",
        LocalEtcd.binary(),
        "--name=lab",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=lab={peer}",
        "--initial-cluster-state=new",
        "--heartbeat-interval=10",
        "--election-timeout=100",
        "--log-level=warn",
        # Well inside the agents' watch read deadline: a quiet watch is not a dead one.
        f"--experimental-watch-progress-notify-interval={PROGRESS_NOTIFY_INTERVAL}",
    ]
    supervisor.spawn(ETCD, argv, supervisor.log_path(ETCD), restart=True)

    def healthy() -> bool:
        conn = http.client.HTTPConnection(str(CONTROL_PLANE.ip), ETCD_PORT, timeout=1)
        try:
            conn.request("GET", "/health")
            return b'"true"' in conn.getresponse().read()
        except OSError:
            return False
        finally:
            conn.close()

    deadline = time.monotonic() + timeout
    while not run_in_netns(netns, healthy):
        if not supervisor.alive(ETCD):
            raise LabError(f"etcd exited: {supervisor.last_words(ETCD)}")
        if time.monotonic() > deadline:
            raise LabError(f"etcd not healthy after {timeout:g}s")
        time.sleep(0.05)
