"""A reservation's name is on disk before the runtime hears of it: host-local fsyncs the
network directory after ADD links a reservation and after DEL or GC removes one (issue 13)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from podnet.cni import dispatch
from podnet.plugins.ipam.host_local import PLUGIN
from tests.plugins.host_local._helpers import environ, netconf, reservations


@pytest.fixture
def synced_dirs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """(directory, its reservations at that moment) for every directory fsync."""
    seen: list[tuple[str, list[str]]] = []
    real = os.fsync

    def record(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if os.path.isdir(path):
            seen.append((path, sorted(reservations(Path(path)))))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return seen


def test_add_and_del_fsync_the_network_directory(
    tmp_path: Path, synced_dirs: list[tuple[str, list[str]]]
) -> None:
    conf = json.dumps(netconf(tmp_path)).encode()
    network = str(tmp_path / "net1")
    code, out = dispatch(PLUGIN, environ("ADD"), conf)
    assert code == 0, out
    assert synced_dirs == [(network, ["10.1.2.2"])]
    code, out = dispatch(PLUGIN, environ("DEL"), conf)
    assert code == 0, out
    assert synced_dirs[-1] == (network, [])
    assert len(synced_dirs) == 2
