"""Leader election through a coordination.k8s.io/v1 Lease, as client-go's leaderelection
does it for kube-controller-manager (tools/leaderelection, resourcelock/leaselock.go).

The Lease's spec is the record: holderIdentity, leaseDurationSeconds, acquireTime,
renewTime (MicroTime) and leaseTransitions. A candidate:
- creates the Lease if there is none, and leads;
- else, if another holds it, waits until it has seen the same record unchanged for
  leaseDurationSeconds *by its own clock* (the time it observed the record, never the
  holder's renewTime, so clock skew between machines does not matter), then takes it
  over with an update at the resourceVersion it read (a 409 means someone else was faster),
  acquireTime now and leaseTransitions + 1;
- tries every retryPeriod (with client-go's jitter factor 1.2) until it leads.
The leader renews every retryPeriod; if it cannot renew for renewDeadline it has lost
(renewDeadline < leaseDuration: it stops before anyone else may take over), and the
caller stops doing a leader's work (kube-controller-manager exits). A leader that stops
on purpose releases the Lease (holderIdentity "", leaseDurationSeconds 1), so the next
one takes over at once instead of waiting out the lease.

Defaults are kube-controller-manager's: lease 15 s, renew deadline 10 s, retry 2 s.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from lightkube import ApiError, Client
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

log = logging.getLogger("podnet.nodeipam")

JITTER_FACTOR = 1.2  # client-go's leaderelection JitterFactor
DEFAULT_LEASE_NAME = "podnet-nodeipam"
DEFAULT_LEASE_NAMESPACE = "kube-system"


class LeaderElectionConfigError(ValueError):
    pass


def default_identity() -> str:
    """kube-controller-manager's: the host name, an underscore, a fresh UUID."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True)
class LeaderElectionConfig:
    identity: str
    name: str = DEFAULT_LEASE_NAME
    namespace: str = DEFAULT_LEASE_NAMESPACE
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        # client-go's NewLeaderElector checks, in its words.
        if self.lease_duration <= self.renew_deadline:
            raise LeaderElectionConfigError("leaseDuration must be greater than renewDeadline")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise LeaderElectionConfigError(
                "renewDeadline must be greater than retryPeriod*JitterFactor"
            )
        if self.lease_duration < 1:
            raise LeaderElectionConfigError("leaseDuration must be at least 1s")
        if self.retry_period <= 0:
            raise LeaderElectionConfigError("retryPeriod must be greater than zero")
        if not self.identity:
            raise LeaderElectionConfigError("leader election identity must not be empty")


@dataclass(frozen=True)
class _Record:
    holder: str
    lease_duration: int
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int


def _record(lease: Lease) -> _Record:
    spec = lease.spec or LeaseSpec()
    return _Record(
        holder=spec.holderIdentity or "",
        lease_duration=int(spec.leaseDurationSeconds or 0),
        acquire_time=spec.acquireTime,
        renew_time=spec.renewTime,
        transitions=int(spec.leaseTransitions or 0),
    )


class LeaderElector:
    def __init__(
        self,
        client: Client,
        config: LeaderElectionConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.config = config
        self.clock = clock
        self._observed: _Record | None = None
        self._observed_at = 0.0
        self._leading = False

    @property
    def leading(self) -> bool:
        return self._leading

    # -- the public loops ------------------------------------------------------------------
    def acquire(self, stop: threading.Event) -> bool:
        """Block until this candidate leads (True) or `stop` is set (False)."""
        config = self.config
        log.info("attempting to acquire leader lease %s/%s...", config.namespace, config.name)
        while not stop.is_set():
            if self.try_acquire_or_renew():
                log.info("successfully acquired lease %s/%s", config.namespace, config.name)
                return True
            pause = config.retry_period * (1 + random.random() * JITTER_FACTOR)
            stop.wait(pause)
        return False

    def keep_renewing(self, stop: threading.Event, lost: threading.Event) -> None:
        """Renew every retryPeriod until `stop` is set (then release the lease), or until
        renewing failed for renewDeadline (then set `lost`)."""
        config = self.config
        last_renewed = self.clock()
        while not stop.wait(config.retry_period):
            if self.try_acquire_or_renew():
                last_renewed = self.clock()
                continue
            if self.clock() - last_renewed >= config.renew_deadline or self._held_by_other():
                log.error(
                    "leaderelection lost: lease %s/%s not renewed for %.1fs",
                    config.namespace, config.name, self.clock() - last_renewed,
                )  # fmt: skip
                self._leading = False
                lost.set()
                return
        self.release()

    def run(self, stop: threading.Event, lost: threading.Event) -> threading.Thread | None:
        """Acquire, then renew from a daemon thread; None if stopped before leading."""
        if not self.acquire(stop):
            return None
        thread = threading.Thread(
            target=self.keep_renewing, args=(stop, lost), name="lease-renew", daemon=True
        )
        thread.start()
        return thread

    # -- one attempt ---------------------------------------------------------------------
    def try_acquire_or_renew(self) -> bool:
        config = self.config
        now = datetime.now(UTC)
        try:
            lease: Lease = self.client.get(Lease, config.name, namespace=config.namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                log.warning("error retrieving lease %s: %s", config.name, exc.status.message)
                return False
            return self._create(now)
        except (httpx.HTTPError, OSError) as exc:
            log.warning("error retrieving lease %s: %s", config.name, exc)
            return False

        old = _record(lease)
        if old != self._observed:
            self._observed, self._observed_at = old, self.clock()
        mine = old.holder == config.identity
        if old.holder and not mine and self._observed_at + old.lease_duration > self.clock():
            return False  # held by another and not expired (by our clock)
        spec = LeaseSpec(
            holderIdentity=config.identity,
            leaseDurationSeconds=int(config.lease_duration),
            acquireTime=old.acquire_time if mine else now,
            renewTime=now,
            leaseTransitions=old.transitions if mine else old.transitions + 1,
        )
        lease.spec = spec
        try:
            updated: Lease = self.client.replace(lease)
        except ApiError as exc:
            if exc.status.code != 409:
                log.warning("failed to update lease %s: %s", config.name, exc.status.message)
            return False
        except (httpx.HTTPError, OSError) as exc:
            log.warning("failed to update lease %s: %s", config.name, exc)
            return False
        if not mine:
            log.info(
                "took over lease %s/%s from %r (transition %d)",
                config.namespace, config.name, old.holder, spec.leaseTransitions,
            )  # fmt: skip
        self._observed, self._observed_at = _record(updated), self.clock()
        self._leading = True
        return True

    def _create(self, now: datetime) -> bool:
        config = self.config
        lease = Lease(
            metadata=ObjectMeta(name=config.name, namespace=config.namespace),
            spec=LeaseSpec(
                holderIdentity=config.identity,
                leaseDurationSeconds=int(config.lease_duration),
                acquireTime=now,
                renewTime=now,
                leaseTransitions=0,
            ),
        )
        try:
            created: Lease = self.client.create(lease, namespace=config.namespace)
        except ApiError as exc:
            if exc.status.code != 409:  # 409: another candidate created it first
                log.warning("error initially creating lease %s: %s", config.name, exc)
            return False
        except (httpx.HTTPError, OSError) as exc:
            log.warning("error initially creating lease %s: %s", config.name, exc)
            return False
        self._observed, self._observed_at = _record(created), self.clock()
        self._leading = True
        return True

    def _held_by_other(self) -> bool:
        observed = self._observed
        return observed is not None and observed.holder not in ("", self.config.identity)

    def release(self) -> None:
        """Give the lease up if we hold it (client-go's ReleaseOnCancel)."""
        if not self._leading:
            return
        self._leading = False
        config = self.config
        try:
            lease: Lease = self.client.get(Lease, config.name, namespace=config.namespace)
            old = _record(lease)
            if old.holder != config.identity:
                return
            now = datetime.now(UTC)
            lease.spec = LeaseSpec(
                holderIdentity="",
                leaseDurationSeconds=1,
                acquireTime=now,
                renewTime=now,
                leaseTransitions=old.transitions,
            )
            self.client.replace(lease)
            log.info("released lease %s/%s", config.namespace, config.name)
        except (ApiError, httpx.HTTPError, OSError) as exc:
            log.warning("could not release lease %s: %s", config.name, exc)
