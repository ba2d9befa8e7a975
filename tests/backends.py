"""Store backends for tests: every test that takes `backend` (or `store`) runs once on a
fresh sqlite file and once on a fresh single-member etcd of its own (skipped, with the
reason, when the etcd binary is missing)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from podnet.store import EtcdNotInstalled, LocalEtcd, Store, open_store

BACKENDS = ["sqlite", "etcd"]


@dataclass
class Backend:
    name: str
    url: str
    etcd: LocalEtcd | None = None

    def open(self) -> Store:
        return open_store(self.url)


def start_etcd(base_dir: Path, members: int = 1) -> LocalEtcd:
    try:
        LocalEtcd.binary()
    except EtcdNotInstalled as exc:
        pytest.skip(str(exc))
    return LocalEtcd(members, base_dir=base_dir).start()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite://{tmp_path}/cluster.db")
        return
    etcd = start_etcd(tmp_path / "etcd")
    try:
        yield Backend("etcd", etcd.url, etcd)
    finally:
        etcd.stop()


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    opened = backend.open()
    try:
        yield opened
    finally:
        opened.close()
