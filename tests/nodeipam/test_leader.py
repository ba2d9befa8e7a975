# The official client's models make every field Optional.
# mypy: disable-error-code="union-attr,no-untyped-call,arg-type,operator,misc,return-value"
"""Leader election through a coordination.k8s.io/v1 Lease, read back with the official
client; and two `podnet nodeipam run` replicas: kill -9 the leader while nodes register,
the other takes over and no podCIDR is ever given twice."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from podnet.nodeipam import (
    LeaderElectionConfig,
    LeaderElectionConfigError,
    LeaderElector,
    kube_client,
)
from tests.apiserver.conftest import Cluster

NAMESPACE, NAME = "kube-system", "podnet-nodeipam"


@pytest.fixture
def api_client(cluster: Cluster) -> Iterator[k8s.ApiClient]:
    with k8s_config.new_client_from_config(cluster.kubeconfigs["admin"]) as api_client:
        yield api_client


def read_lease(api_client: k8s.ApiClient) -> k8s.V1LeaseSpec:
    return k8s.CoordinationV1Api(api_client).read_namespaced_lease(NAME, NAMESPACE).spec


def elector(cluster: Cluster, identity: str, **timing: float) -> LeaderElector:
    config = LeaderElectionConfig(identity=identity, **timing)
    return LeaderElector(kube_client(cluster.kubeconfigs["controller"]), config)


def test_config_checks_are_client_gos() -> None:
    with pytest.raises(LeaderElectionConfigError, match="leaseDuration must be greater"):
        LeaderElectionConfig(identity="a", lease_duration=10, renew_deadline=10)
    with pytest.raises(LeaderElectionConfigError, match="retryPeriod\\*JitterFactor"):
        LeaderElectionConfig(identity="a", renew_deadline=2, retry_period=2)
    defaults = LeaderElectionConfig(identity="a")
    assert (defaults.lease_duration, defaults.renew_deadline, defaults.retry_period) == (15, 10, 2)


def test_acquire_hold_release_take_over(cluster: Cluster, api_client: k8s.ApiClient) -> None:
    first, second = elector(cluster, "first"), elector(cluster, "second")
    assert first.try_acquire_or_renew()
    lease = read_lease(api_client)
    assert (lease.holder_identity, lease.lease_duration_seconds, lease.lease_transitions) == (
        "first", 15, 0,
    )  # fmt: skip
    assert isinstance(lease.acquire_time, datetime) and lease.renew_time >= lease.acquire_time
    acquired = lease.acquire_time

    assert not second.try_acquire_or_renew()  # held, and not expired by second's clock
    assert first.try_acquire_or_renew()  # a renewal keeps acquireTime, moves renewTime
    renewed = read_lease(api_client)
    assert renewed.acquire_time == acquired and renewed.renew_time >= lease.renew_time
    assert renewed.lease_transitions == 0

    first.release()
    released = read_lease(api_client)
    assert (released.holder_identity, released.lease_duration_seconds) in (("", 1), (None, 1))
    assert second.try_acquire_or_renew()  # released: no need to wait out the lease
    taken = read_lease(api_client)
    assert (taken.holder_identity, taken.lease_transitions) == ("second", 1)
    for item in (first, second):
        item.client.close()


def test_an_expired_lease_is_taken_over_by_the_observers_clock(cluster: Cluster) -> None:
    now = [1000.0]
    first = elector(cluster, "first", lease_duration=3, renew_deadline=2, retry_period=0.5)
    second = LeaderElector(
        kube_client(cluster.kubeconfigs["controller"]),
        LeaderElectionConfig(
            identity="second", lease_duration=3, renew_deadline=2, retry_period=0.5
        ),
        clock=lambda: now[0],
    )
    assert first.try_acquire_or_renew()
    assert not second.try_acquire_or_renew()  # observed now: expires at +3 s by its clock
    now[0] += 2.9
    assert not second.try_acquire_or_renew()
    now[0] += 0.2
    assert second.try_acquire_or_renew()
    assert not first.try_acquire_or_renew()  # first sees second's fresh record
    for item in (first, second):
        item.client.close()


class Replica:
    """`podnet nodeipam run` through the API, its stderr collected."""

    def __init__(self, cluster: Cluster, *flags: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "podnet.cli.main", "nodeipam", "run",
             "--kubeconfig", cluster.kubeconfigs["controller"], "--cluster-cidr", "10.244.0.0/16",
             *flags],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env={k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"},
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def identity(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(r"leader election: I am (\S+)", line)
                if found:
                    return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no identity logged: {''.join(self.lines)}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.mark.slow
def test_kill_the_leader_while_nodes_register(cluster: Cluster, api_client: k8s.ApiClient) -> None:
    lease_seconds = 3.0
    timing = ["--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s",
              "--leader-elect-retry-period", "500ms"]  # fmt: skip
    replicas = [Replica(cluster, *timing), Replica(cluster, *timing)]
    core = k8s.CoreV1Api(api_client)
    stop_registering = threading.Event()
    registered: list[str] = []

    def register_nodes() -> None:
        for i in range(200):  # a /16 has 256 blocks of /24
            if stop_registering.is_set():
                return
            name = f"n{i:03d}"
            core.create_node(k8s.V1Node(metadata=k8s.V1ObjectMeta(name=name)))
            registered.append(name)
            time.sleep(0.02)

    try:
        identities = {replica.identity(): replica for replica in replicas}
        deadline = time.monotonic() + 60
        while (holder := _holder(api_client)) not in identities:
            assert time.monotonic() < deadline, "no replica took the lease"
            time.sleep(0.1)
        leader = identities[holder]
        writer = threading.Thread(target=register_nodes)
        writer.start()
        while len(registered) < 50:
            assert writer.is_alive()
            time.sleep(0.02)
        leader.process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        leader.process.wait(timeout=10)
        while (holder := _holder(api_client)) == leader_identity(identities, leader):
            assert time.monotonic() - killed < 10 * lease_seconds, "nobody took over"
            time.sleep(0.05)
        takeover = time.monotonic() - killed
        print(f"\ntakeover {takeover:.2f}s after kill -9 (lease {lease_seconds:g}s)")
        assert holder in identities and identities[holder] is not leader
        writer.join(timeout=120)
        stop_registering.set()
        assert read_lease(api_client).lease_transitions == 1

        def cidrs() -> dict[str, str | None]:
            return {
                n.metadata.name: n.spec.pod_cidr if n.spec else None for n in core.list_node().items
            }

        deadline = time.monotonic() + 120
        while not all((now := cidrs()).values()) or len(now) < len(registered):
            missing = sorted(name for name, cidr in now.items() if not cidr)
            assert time.monotonic() < deadline, f"nodes left without a podCIDR: {missing}"
            time.sleep(0.2)
        values = [v for v in now.values() if v]
        assert len(values) == len(set(values)) == len(registered)  # never twice
    finally:
        stop_registering.set()
        for replica in replicas:
            replica.close()


def leader_identity(identities: dict[str, Replica], leader: Replica) -> str:
    return next(identity for identity, replica in identities.items() if replica is leader)


def _holder(api_client: k8s.ApiClient) -> str | None:
    try:
        return str(read_lease(api_client).holder_identity or "")
    except k8s.ApiException as exc:
        if exc.status == 404:
            return None
        raise
