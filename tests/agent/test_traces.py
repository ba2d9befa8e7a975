"""The agent's record of CNI requests: a bounded ring of traces served on /traces, and
Prometheus histograms and error counters on /metrics (scraped as Prometheus would)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from podnet.agent._health import HealthServer
from podnet.agent._traces import RequestLog, TraceRing
from podnet.cni import CNIError, Request, Trace


def a_trace(pod: str, verb: str = "ADD", *, fail: bool = False) -> Trace:
    namespace, name = pod.split("/")
    trace = Trace(
        "flannel",
        {
            "CNI_COMMAND": verb,
            "CNI_CONTAINERID": f"id-{name}",
            "CNI_ARGS": f"K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name}",
        },
    )
    request = Request(command=verb, config={"name": "cbr0", "type": "flannel"})
    with trace.span("flannel", request):
        try:
            with trace.span("host-local", request):
                if fail:
                    raise CNIError("no IP addresses available in range set", code=11)
        except CNIError:
            pass
    return trace.finish(1 if fail else 0)


@pytest.fixture
def served() -> Iterator[tuple[RequestLog, int]]:
    registry = CollectorRegistry()
    requests = RequestLog(registry, size=3)
    health = HealthServer(
        "127.0.0.1",
        0,
        ready=lambda: True,
        metrics=lambda: {"podnet_agent_peers": 2.0},
        registry=registry,
        traces=requests.ring.to_json,
    )
    health.start()
    try:
        yield requests, health.port
    finally:
        health.stop()


def test_the_ring_keeps_the_last_traces_and_selects_by_pod() -> None:
    ring = TraceRing(size=2)
    for pod in ("default/a", "default/b", "default/c"):
        ring.add(a_trace(pod))
    assert [t.pod for t in ring.select()] == ["default/b", "default/c"]
    assert [t.container_id for t in ring.select(pod="default/c")] == ["id-c"]
    assert ring.select(pod="default/a") == []


def test_traces_are_served_as_json_per_pod(served: tuple[RequestLog, int]) -> None:
    requests, port = served
    requests.record(a_trace("default/web"))
    requests.record(a_trace("default/web", "DEL"))
    requests.record(a_trace("kube-system/dns"))
    answer = httpx.get(f"http://127.0.0.1:{port}/traces", params={"pod": "default/web"})
    traces = answer.json()["traces"]
    assert answer.headers["content-type"] == "application/json"
    assert [(t["verb"], [s["plugin"] for s in t["spans"]]) for t in traces] == [
        ("ADD", ["flannel", "host-local"]),
        ("DEL", ["flannel", "host-local"]),
    ]


def test_metrics_count_every_hop_and_errors_by_code(served: tuple[RequestLog, int]) -> None:
    requests, port = served
    for _ in range(3):
        requests.record(a_trace("default/web"))
    requests.record(a_trace("default/web", fail=True))
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    count = "podnet_cni_request_duration_seconds_count"
    assert samples[(count, (("plugin", "host-local"), ("verb", "ADD")))] == 4
    assert samples[(count, (("plugin", "flannel"), ("verb", "ADD")))] == 4
    errors = (("code", "11"), ("plugin", "host-local"), ("verb", "ADD"))
    assert samples[("podnet_cni_errors_total", errors)] == 1
    assert samples[("podnet_agent_peers", ())] == 2


def test_recording_from_many_threads_loses_nothing() -> None:
    requests = RequestLog(CollectorRegistry(), size=10_000)

    def record(pod: str) -> None:
        for _ in range(100):
            requests.record(a_trace(pod))

    threads = [threading.Thread(target=record, args=(f"ns/p{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(requests.ring.select()) == 800
    assert json.loads(requests.ring.to_json(pod="ns/p3"))["traces"][0]["pod"] == "ns/p3"
