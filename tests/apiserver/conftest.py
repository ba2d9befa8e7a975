"""An API server on 127.0.0.1 over a fresh store, with one token per identity and a
kubeconfig for each, shared by the API server tests."""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from podnet.apiserver import (
    CONTROLLER_MANAGER,
    MASTERS,
    NODES_GROUP,
    SCHEDULER,
    APIServer,
    Tokens,
    ensure_serving_certs,
    write_kubeconfig,
    write_token_file,
)
from podnet.store import Store, open_store
from tests.backends import Backend, backend

IDENTITIES = {
    "admin": ("kubernetes-admin", (MASTERS,)),
    "n1": ("system:node:n1", (NODES_GROUP,)),
    "n2": ("system:node:n2", (NODES_GROUP,)),
    "controller": (CONTROLLER_MANAGER, ()),
    "scheduler": (SCHEDULER, ()),
    "stranger": ("alice", ()),
}


@dataclass
class Cluster:
    server: APIServer
    store: Store
    url: str
    ca: str
    tokens: dict[str, str]
    kubeconfigs: dict[str, str]
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, who: str | None = "admin") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        verify = ssl.create_default_context(cafile=self.ca)
        client = httpx.Client(base_url=self.url, verify=verify, headers=headers, timeout=30)
        self.clients.append(client)
        return client


def start_cluster(store: Store, tmp_path: Path, **options: object) -> Cluster:
    pki = ensure_serving_certs(str(tmp_path / "pki"), ["127.0.0.1"])
    tokens = {who: secrets.token_hex(16) for who in IDENTITIES}
    token_file = str(tmp_path / "tokens.csv")
    write_token_file(
        token_file,
        [(tokens[who], user, f"uid-{who}", groups) for who, (user, groups) in IDENTITIES.items()],
    )
    server = APIServer(store, tokens=Tokens.load(token_file), serving=pki, **options)  # type: ignore[arg-type]
    host, port = server.listen("127.0.0.1", 0)
    url = f"https://{host}:{port}"
    kubeconfigs = {}
    for who, (user, _groups) in IDENTITIES.items():
        path = str(tmp_path / f"{who}.kubeconfig")
        write_kubeconfig(path, server=url, ca_cert=pki.ca_cert, token=tokens[who], user=user)
        kubeconfigs[who] = path
    return Cluster(server, store, url, pki.ca_cert, tokens, kubeconfigs)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    store = open_store(f"sqlite://{tmp_path}/cluster.db")
    running = start_cluster(store, tmp_path)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        running.server.close()
        store.close()


@pytest.fixture
def any_cluster(backend: Backend, tmp_path: Path) -> Iterator[Cluster]:
    """The API server on sqlite and on etcd."""
    store = backend.open()
    running = start_cluster(store, tmp_path)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        running.server.close()
        store.close()


__all__ = ["Cluster", "any_cluster", "backend", "cluster"]
