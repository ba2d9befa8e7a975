"""What the agent keeps of the CNI requests it served: the last traces in a bounded ring
(`podnet trace pod NAMESPACE/NAME` reads them through the health server's /traces), and
Prometheus metrics per plugin and verb (latency histograms, errors by CNI code)."""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from podnet.cni import Trace

DEFAULT_RING = 512  # traces kept; a pod's ADD and DEL are two
# Latency buckets for one hop, from a warm agent's sub-millisecond host-local to a slow ADD.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class CNIMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram(
            "podnet_cni_request_duration_seconds",
            "Time per CNI verb and plugin, delegated hops included, as served by the agent.",
            ("plugin", "verb"),
            registry=registry,
            buckets=BUCKETS,
        )
        self.errors = Counter(
            "podnet_cni_errors",
            "CNI errors per plugin, verb and CNI error code.",
            ("plugin", "verb", "code"),
            registry=registry,
        )

    def observe(self, trace: Trace) -> None:
        for span in trace.spans:
            self.latency.labels(span.plugin, span.verb).observe(span.duration)
            error = span.outcome.get("error")
            if error is not None:
                self.errors.labels(span.plugin, span.verb, str(error["code"])).inc()
        if trace.code != 0 and not trace.spans:
            # refused before any plugin ran (a bad request, the GC gate): the request's own
            self.errors.labels(trace.plugin, trace.verb, "refused").inc()


class TraceRing:
    """The last `size` traces, oldest first; safe to use from every worker thread."""

    def __init__(self, size: int = DEFAULT_RING) -> None:
        self._ring: deque[Trace] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, trace: Trace) -> None:
        with self._lock:
            self._ring.append(trace)

    def select(self, pod: str = "", container_id: str = "") -> list[Trace]:
        with self._lock:
            traces = list(self._ring)
        return [
            t
            for t in traces
            if (not pod or t.pod == pod) and (not container_id or t.container_id == container_id)
        ]

    def to_json(self, pod: str = "", container_id: str = "") -> bytes:
        found: list[dict[str, Any]] = [t.to_json() for t in self.select(pod, container_id)]
        return json.dumps({"traces": found}).encode()


class RequestLog:
    """Where the CNI server hands each finished trace: the ring and the metrics."""

    def __init__(self, registry: CollectorRegistry, size: int = DEFAULT_RING) -> None:
        self.ring = TraceRing(size)
        self.metrics = CNIMetrics(registry)

    def record(self, trace: Trace) -> None:
        self.ring.add(trace)
        self.metrics.observe(trace)
