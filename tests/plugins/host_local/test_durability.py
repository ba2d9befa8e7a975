"""What host-local makes durable (see the disk store's module doc): a reservation's
content before its name appears, and a release before the runtime hears of it. A new
name is not fsync'd: its pod cannot outlive a power loss."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from podnet.cni import dispatch
from podnet.plugins.ipam.host_local import PLUGIN
from tests.plugins.host_local._helpers import environ, netconf, reservations

# (what was fsync'd: "dir" or the file's content, the reservations at that moment)
Synced = list[tuple[str, list[str]]]


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> Synced:
    seen: Synced = []
    real = os.fsync

    def record(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        directory = path if stat.S_ISDIR(os.fstat(fd).st_mode) else os.path.dirname(path)
        what = "dir" if directory == path else Path(path).read_text()
        seen.append((what, sorted(reservations(Path(directory)))))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return seen


def test_add_fsyncs_the_content_before_the_name_and_del_the_directory(
    tmp_path: Path, synced: Synced
) -> None:
    conf = json.dumps(netconf(tmp_path)).encode()
    code, out = dispatch(PLUGIN, environ("ADD"), conf)
    assert code == 0, out
    owner = (tmp_path / "net1" / "10.1.2.2").read_text()
    assert synced == [(owner, [])]  # the content, while no name points to it yet
    code, out = dispatch(PLUGIN, environ("DEL"), conf)
    assert code == 0, out
    assert synced[1:] == [("dir", [])]  # the release, once it is done
