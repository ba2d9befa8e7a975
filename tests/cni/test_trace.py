"""Traces of CNI requests: a span per hop, delegated hops nested, errors kept."""

from __future__ import annotations

import json
from ipaddress import ip_interface, ip_network

from podnet.cni import CNIError, Host, Plugin, Request, Result, call, dispatch
from podnet.cni._result import Interface, IPConfig, Route
from podnet.cni._trace import Trace, touched

ENV = {
    "CNI_COMMAND": "DEL",
    "CNI_CONTAINERID": "c0ffee",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/nowhere",
    "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web",
}
CONFIG = {
    "cniVersion": "1.0.0",
    "name": "cbr0",
    "type": "outer",
    "ipMasq": False,
    "ipam": {"type": "inner", "ranges": [[{"subnet": "10.244.1.0/24"}]], "dataDir": "/x"},
}


def chain(fail_inner: bool) -> Plugin:
    def inner_delete(request: Request) -> None:
        if fail_inner:
            raise CNIError("store is locked", code=11)

    inner = Plugin(name="inner", add=lambda r: Result(), delete=inner_delete)

    def outer_delete(request: Request) -> None:
        call(inner, request.with_config("DEL", request.config))

    return Plugin(name="outer", add=lambda r: Result(), delete=outer_delete)


def traced(plugin: Plugin) -> Trace:
    with Host() as host:
        host.trace = Trace("outer", ENV)
        code, _ = dispatch(plugin, {**ENV}, json.dumps(CONFIG).encode(), host)
        return host.trace.finish(code)


def test_every_hop_is_a_span_nested_under_its_caller_with_its_inputs() -> None:
    trace = traced(chain(fail_inner=False)).to_json()
    assert (trace["pod"], trace["verb"], trace["containerId"], trace["code"]) == (
        "default/web",
        "DEL",
        "c0ffee",
        0,
    )
    spans = trace["spans"]
    assert [(s["plugin"], s["verb"], s["depth"]) for s in spans] == [
        ("outer", "DEL", 0),
        ("inner", "DEL", 1),
    ]
    assert spans[0]["inputs"] == {"name": "cbr0", "type": "outer", "ipMasq": False, "ipam": "inner"}
    # an IPAM hop shows its own part of the config
    assert spans[1]["inputs"] == {"type": "inner", "dataDir": "/x", "ranges": "10.244.1.0/24"}
    assert spans[0]["startMs"] <= spans[1]["startMs"]
    assert (
        spans[1]["startMs"] + spans[1]["durationMs"]
        <= spans[0]["startMs"] + spans[0]["durationMs"] + 0.001
    )
    assert trace["durationMs"] >= spans[0]["durationMs"]


def test_a_failing_hop_keeps_its_code_and_message_and_so_does_its_caller() -> None:
    spans = traced(chain(fail_inner=True)).to_json()["spans"]
    error = {"code": 11, "msg": "store is locked"}
    assert [s.get("error") for s in spans] == [error, error]


def test_without_a_trace_nothing_is_recorded() -> None:
    with Host() as host:
        code, _ = dispatch(chain(False), {**ENV}, json.dumps(CONFIG).encode(), host)
    assert (code, host.trace) == (0, None)


def test_a_result_names_what_the_hop_set_up() -> None:
    result = Result(
        interfaces=[Interface("cni0", "aa:bb:cc:00:00:01"), Interface("eth0", "", sandbox="/ns")],
        ips=[IPConfig(ip_interface("10.244.1.2/24"), interface=1)],
        routes=[Route(ip_network("0.0.0.0/0"), ip_interface("10.244.1.1/24").ip)],
    )
    assert touched(result) == {
        "result": {
            "interfaces": ["cni0@node aa:bb:cc:00:00:01", "eth0@pod"],
            "ips": ["10.244.1.2/24"],
            "routes": ["0.0.0.0/0 via 10.244.1.1"],
        }
    }
    assert touched(None) == {}
