"""Protobuf request bodies (what kubectl's typed generators send), decoded for the kinds
served; anything else is refused with a clear Status, never a traceback."""

from __future__ import annotations

import pytest

from podnet.apiserver._protobuf import decode_protobuf
from podnet.apiserver._status import BadRequest, UnsupportedMediaType
from tests.apiserver.conftest import Cluster

# `kubectl create configmap cm1 --from-literal=a=b`, as kubectl v1.32 sends it (-v=8).
KUBECTL_CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d6170121d0a130a03636d3112001a00"
    "22002a0032003800420012060a0161120162"
    "1a002200"
)


def field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def envelope(kind: str, raw: bytes) -> bytes:
    type_meta = field(1, b"v1") + field(2, kind.encode())
    return b"k8s\x00" + field(1, type_meta) + field(2, raw)


def test_kubectls_configmap() -> None:
    assert decode_protobuf(KUBECTL_CONFIGMAP) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"}, "data": {"a": "b"}
    }  # fmt: skip


def test_namespace_with_labels_and_binary_data() -> None:
    meta = field(1, b"team-a") + field(11, field(1, b"env") + field(2, b"prod"))
    assert decode_protobuf(envelope("Namespace", field(1, meta))) == {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a", "labels": {"env": "prod"}},
    }  # fmt: skip
    binary = field(3, field(1, b"blob") + field(2, b"\x00\xff"))
    decoded = decode_protobuf(envelope("ConfigMap", field(1, field(1, b"b")) + binary))
    assert decoded["binaryData"] == {"blob": "AP8="}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not protobuf", BadRequest),
        (b"k8s\x00\x0a\x50", BadRequest),  # a field longer than the body
        (envelope("Secret", b""), UnsupportedMediaType),
        (envelope("ConfigMap", b"\x0a\x02\xff\xfe"), BadRequest),  # metadata not UTF-8
    ],
)
def test_bad_bodies_are_named(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_protobuf(body)


def test_over_http(cluster: Cluster) -> None:
    admin = cluster.client()
    headers = {"Content-Type": "application/vnd.kubernetes.protobuf"}
    url = "/api/v1/namespaces/default/configmaps"
    created = admin.post(url, content=KUBECTL_CONFIGMAP, headers=headers)
    assert created.status_code == 201 and created.json()["data"] == {"a": "b"}
    refused = admin.post(url, content=envelope("Secret", b""), headers=headers)
    assert refused.status_code == 415 and refused.json()["kind"] == "Status"
    xml = admin.post(url, content=b"<cm/>", headers={"Content-Type": "application/xml"})
    assert xml.status_code == 415


def test_openapi_documents(cluster: Cluster) -> None:
    admin = cluster.client()
    root = admin.get("/openapi/v3").json()["paths"]
    assert set(root) == {"api/v1", "apis/coordination.k8s.io/v1"}
    core = admin.get(root["api/v1"]["serverRelativeURL"]).json()
    assert core["openapi"] == "3.0.0"
    patch = core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert "io.k8s.api.core.v1.Pod" in core["components"]["schemas"]
    assert admin.get("/openapi/v3/apis/apps/v1").status_code == 404
    assert cluster.client(None).get("/openapi/v3").status_code == 401
