"""podnet.kube's client: credentials from a kubeconfig, else in-cluster, else one clear
error; against podnet's API server, with lightkube as the client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Node

from podnet.kube import CredentialsError, connect
from podnet.store import open_store
from tests.apiserver.conftest import Cluster, start_cluster
from tests.store.relay import RecordingListener

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("kube")
    store = open_store(f"sqlite://{tmp}/cluster.db")
    running = start_cluster(store, tmp)
    try:
        yield running
    finally:
        running.server.close()
        store.close()


@pytest.fixture
def outside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)


def service_account(api: Cluster, where: Path) -> Path:
    """A pod's service account directory, as the kubelet mounts it."""
    where.mkdir()
    (where / "token").write_text(api.tokens["admin"])
    (where / "ca.crt").write_text(Path(api.ca).read_text())
    (where / "namespace").write_text("kube-podnet")
    return where


def node_names(client: Client) -> list[str]:
    return sorted(n.metadata.name for n in client.list(Node) if n.metadata and n.metadata.name)


def test_a_kubeconfig_is_used_as_given(api: Cluster, outside_a_cluster: None) -> None:
    client = connect(api.kubeconfigs["admin"], field_manager="podnet-test")
    try:
        assert isinstance(node_names(client), list)
    finally:
        client.close()


def test_in_cluster_the_service_account_and_the_service_variables(
    api: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = service_account(api, tmp_path / "serviceaccount")
    url = httpx.URL(api.url)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", str(url.host))
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(url.port))
    client = connect(None, field_manager="podnet-test", service_account_dir=str(account))
    try:
        assert isinstance(node_names(client), list)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("service_host", "service_port"),
    [(None, None), ("127.0.0.1", None), (None, "6443")],
)
def test_outside_a_cluster_without_a_kubeconfig_one_clear_error(
    api: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    service_host: str | None,
    service_port: str | None,
) -> None:
    """Both service variables or none, as rest.InClusterConfig: half of them is no cluster."""
    account = service_account(api, tmp_path / "serviceaccount")
    for name, value in (
        ("KUBERNETES_SERVICE_HOST", service_host),
        ("KUBERNETES_SERVICE_PORT", service_port),
    ):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    with pytest.raises(CredentialsError, match="^no Kubernetes credentials: pass --kubeconfig"):
        connect(None, field_manager="podnet-test", service_account_dir=str(account))


def test_bad_credentials_are_named_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outside_a_cluster: None
) -> None:
    missing = tmp_path / "missing.kubeconfig"
    with pytest.raises(CredentialsError, match=f"^kubeconfig {missing} does not exist$"):
        connect(str(missing), field_manager="podnet-test")
    garbage = tmp_path / "garbage.kubeconfig"
    garbage.write_text("clusters: [\n")
    with pytest.raises(CredentialsError, match=f"^kubeconfig {garbage} is not usable: ") as bad:
        connect(str(garbage), field_manager="podnet-test")
    assert "\n" not in str(bad.value)

    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    with pytest.raises(CredentialsError, match="^in-cluster credentials are not usable: "):
        connect(None, field_manager="podnet-test", service_account_dir=str(tmp_path / "none"))


def test_proxies_from_the_environment_are_ignored(
    api: Cluster, monkeypatch: pytest.MonkeyPatch, outside_a_cluster: None
) -> None:
    with RecordingListener() as proxy:
        for name in PROXY_VARIABLES:
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = connect(api.kubeconfigs["admin"], field_manager="podnet-test", timeout=5)
        try:
            assert isinstance(node_names(client), list)
        finally:
            client.close()
        assert proxy.received == []
