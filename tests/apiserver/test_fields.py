# The client's models make every field Optional and its config module is untyped.
# mypy: disable-error-code="union-attr,index,no-untyped-call"
"""fieldValidation, as kube-apiserver answers it, through the official Python client and
kubectl: Strict refuses unknown fields in the API server's words, Warn (the default)
answers a Warning header per field, Ignore says nothing; the field is never stored."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from tests.apiserver.conftest import Cluster

PAUSE = "registry.k8s.io/pause:3.9"
PODS = "/api/v1/namespaces/default/pods"


def core(cluster: Cluster) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(cluster.kubeconfigs["admin"]))


def pod(name: str, **container_extra: Any) -> dict[str, Any]:
    container = {"name": "c", "image": PAUSE, **container_extra}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container]}}  # fmt: skip


def stored(cluster: Cluster, name: str) -> dict[str, Any]:
    answer = cluster.client().get(f"{PODS}/{name}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_strict_refuses_unknown_fields_in_the_api_server_s_words(cluster: Cluster) -> None:
    """(The official client checks its typed bodies itself: raw requests here, and
    kubectl's own below.)"""
    http = cluster.client()
    body = pod("web", bogus=1)
    body["spec"]["nodeNmae"] = "n1"
    refused = http.post(PODS, json=body, params={"fieldValidation": "Strict"})
    assert refused.status_code == 400
    assert refused.json()["reason"] == "BadRequest"
    assert refused.json()["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        'unknown field "spec.containers[0].bogus", unknown field "spec.nodeNmae"'
    )
    assert http.get(f"{PODS}/web").status_code == 404
    # A replace is refused alike, and changes nothing.
    assert http.post(PODS, json=pod("web")).status_code == 201
    current = stored(cluster, "web")
    current["metadata"]["labelz"] = {"a": "b"}
    replaced = http.put(f"{PODS}/web", json=current, params={"fieldValidation": "Strict"})
    assert replaced.status_code == 400
    assert replaced.json()["message"].endswith(
        'strict decoding error: unknown field "metadata.labelz"'
    )
    assert (
        stored(cluster, "web")["metadata"]["resourceVersion"]
        == (current["metadata"]["resourceVersion"])
    )


DUPLICATED = (
    '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"dup","labels":{"a":"1","a":"2"}},'
    '"spec":{"containers":[{"name":"c","image":"old","image":"IMAGE","bogus":1}]}}'
).replace("IMAGE", PAUSE)
DUPLICATES = [
    'duplicate field "metadata.labels.a"',
    'duplicate field "spec.containers[0].image"',
    'unknown field "spec.containers[0].bogus"',
]
JSON = {"Content-Type": "application/json"}


def test_fields_named_twice_are_refused_by_strict_and_warned_of(cluster: Cluster) -> None:
    """kube-apiserver's strict decoding reports a field named twice in a body as it
    reports an unknown one; without Strict the last value is the one kept."""
    http = cluster.client()
    strict = {"fieldValidation": "Strict"}
    refused = http.post(PODS, content=DUPLICATED, headers=JSON, params=strict)
    assert refused.status_code == 400 and refused.json()["reason"] == "BadRequest"
    assert refused.json()["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        + ", ".join(DUPLICATES)
    )
    assert http.get(f"{PODS}/dup").status_code == 404
    warned = http.post(PODS, content=DUPLICATED, headers=JSON)
    assert warned.status_code == 201
    assert warned.headers.get_list("Warning") == [
        '299 - "{}"'.format(text.replace('"', '\\"')) for text in DUPLICATES
    ]
    kept = stored(cluster, "dup")
    assert kept["metadata"]["labels"] == {"a": "2"}
    assert kept["spec"]["containers"][0]["image"] == PAUSE
    # A replace is refused alike; Ignore says nothing and keeps the last.
    version = kept["metadata"]["resourceVersion"]
    replace = DUPLICATED.replace('"name":"dup"', f'"name":"dup","resourceVersion":"{version}"')
    refused = http.put(f"{PODS}/dup", content=replace, headers=JSON, params=strict)
    assert refused.status_code == 400
    assert refused.json()["message"].endswith("strict decoding error: " + ", ".join(DUPLICATES))
    quiet = http.put(
        f"{PODS}/dup", content=replace, headers=JSON, params={"fieldValidation": "Ignore"}
    )
    assert quiet.status_code == 200 and "Warning" not in quiet.headers


def test_warn_is_the_default_and_answers_a_warning_header(cluster: Cluster) -> None:
    http = cluster.client()
    for name, params in (("explicit", {"fieldValidation": "Warn"}), ("default", {})):
        answer = http.post(PODS, json=pod(name, bogus="x"), params=params)
        assert answer.status_code == 201
        assert answer.headers.get_list("Warning") == [
            '299 - "unknown field \\"spec.containers[0].bogus\\""'
        ]
        assert "bogus" not in answer.json()["spec"]["containers"][0]
        assert "bogus" not in stored(cluster, name)["spec"]["containers"][0]
    quiet = http.post(PODS, json=pod("quiet", bogus="x"), params={"fieldValidation": "Ignore"})
    assert quiet.status_code == 201 and "Warning" not in quiet.headers
    assert "bogus" not in stored(cluster, "quiet")["spec"]["containers"][0]
    # Known fields are kept, whatever the directive (the official client, typed).
    api = core(cluster)
    container = client.V1Container(name="c", image=PAUSE, working_dir="/w")
    typed = client.V1Pod(
        metadata=client.V1ObjectMeta(name="kept"), spec=client.V1PodSpec(containers=[container])
    )
    api.create_namespaced_pod("default", typed, field_validation="Strict")
    assert stored(cluster, "kept")["spec"]["containers"][0]["workingDir"] == "/w"


def test_patches_are_checked_on_the_patched_object(cluster: Cluster) -> None:
    """Through the official client, whose patches are plain JSON."""
    api = core(cluster)
    assert cluster.client().post(PODS, json=pod("web")).status_code == 201
    patch = {"metadata": {"labels": {"app": "web"}}, "spec": {"bogus": True}}
    with pytest.raises(client.ApiException) as refused:
        api.patch_namespaced_pod("web", "default", patch, field_validation="Strict")
    assert refused.value.status == 422
    status = json.loads(refused.value.body or "{}")
    assert status["details"]["causes"][0]["field"] == "patch"
    assert status["message"].endswith('strict decoding error: unknown field "spec.bogus"')
    assert "labels" not in stored(cluster, "web")["metadata"]  # nothing stored
    _data, code, headers = api.patch_namespaced_pod_with_http_info("web", "default", patch)
    assert code == 200
    assert headers["Warning"] == '299 - "unknown field \\"spec.bogus\\""'
    after = stored(cluster, "web")
    assert after["metadata"]["labels"] == {"app": "web"} and "bogus" not in after["spec"]


def test_an_unknown_directive_is_refused(cluster: Cluster) -> None:
    typed = client.V1Pod(metadata=client.V1ObjectMeta(name="web"), spec=client.V1PodSpec(
        containers=[client.V1Container(name="c", image=PAUSE)]))  # fmt: skip
    with pytest.raises(client.ApiException) as refused:
        core(cluster).create_namespaced_pod("default", typed, field_validation="Loose")
    assert refused.value.status == 422
    assert json.loads(refused.value.body or "{}")["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loose": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_create_validates_on_the_server(cluster: Cluster, tmp_path: Path) -> None:
    """kubectl's default (--validate=strict) asks the server, which refuses; with
    --validate=warn it prints the server's warning and creates the pod."""
    manifest = tmp_path / "pod.json"
    manifest.write_text(json.dumps(pod("web", bogus=1)))

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        argv = ["kubectl", "--kubeconfig", cluster.kubeconfigs["admin"], *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    refused = kubectl("create", "-f", str(manifest))
    assert refused.returncode != 0
    assert refused.stderr.strip() == (
        f'Error from server (BadRequest): error when creating "{manifest}": Pod in version "v1" '
        "cannot be handled as a Pod: strict decoding error: "
        'unknown field "spec.containers[0].bogus"'
    )
    warned = kubectl("create", "--validate=warn", "-f", str(manifest))
    assert warned.returncode == 0 and warned.stdout == "pod/web created\n", warned.stderr
    assert warned.stderr == 'Warning: unknown field "spec.containers[0].bogus"\n'
