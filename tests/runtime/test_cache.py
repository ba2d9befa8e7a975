"""The libcni result cache: format round trip, legacy files, enumeration."""

from __future__ import annotations

import json
import os

import pytest

from podnet.cni import DecodingFailure
from podnet.runtime import CachedAttachment, ResultCache

RESULT = {"cniVersion": "1.0.0", "ips": [{"address": "10.244.1.5/24"}]}


def entry(container_id: str = "c1", network: str = "net1", **kwargs) -> CachedAttachment:
    return CachedAttachment(container_id, "eth0", network, config=b'{"name":"net1"}', **kwargs)


def test_round_trip_and_omitempty(tmp_path) -> None:
    cache = ResultCache(str(tmp_path))
    full = entry(
        netns="/run/netns/x", cni_args=(("K", "V"),), capability_args={"a": 1}, result=RESULT
    )
    path = cache.write(full)
    assert path == str(tmp_path / "results" / "net1-c1-eth0")
    assert cache.read("net1", "c1", "eth0") == full
    cache.write(entry("c2"))
    with open(cache.path("net1", "c2", "eth0")) as handle:
        bare = json.load(handle)
    assert bare == {
        "kind": "cniCacheV1",
        "containerId": "c2",
        "config": "eyJuYW1lIjoibmV0MSJ9",  # base64, as Go marshals []byte
        "ifName": "eth0",
        "networkName": "net1",
    }
    assert cache.read("net1", "c3", "eth0") is None


def test_a_legacy_file_is_read_as_a_bare_result(tmp_path) -> None:
    cache = ResultCache(str(tmp_path))
    os.makedirs(cache.results_dir)
    with open(cache.path("net1", "old", "eth0"), "w") as handle:
        json.dump(RESULT, handle)
    legacy = cache.read("net1", "old", "eth0")
    assert legacy is not None and legacy.result == RESULT and legacy.config == b""
    assert cache.attachments() == [], "a legacy file is no attachment GC could replay"
    with open(cache.path("net1", "bad", "eth0"), "w") as handle:
        handle.write('{"kind": "cniCacheV1", "config": "***"}')
    with pytest.raises(DecodingFailure):
        cache.read("net1", "bad", "eth0")


def test_attachments_filter_by_container(tmp_path) -> None:
    cache = ResultCache(str(tmp_path))
    for cid, net in (("c1", "net1"), ("c1", "net2"), ("c10", "net1")):
        cache.write(entry(cid, net))
    assert [(a.container_id, a.network_name) for a in cache.attachments("c1")] == [
        ("c1", "net1"),
        ("c1", "net2"),
    ]
    assert len(cache.attachments()) == 3
    cache.delete("net1", "c1", "eth0")
    cache.delete("net1", "c1", "eth0")
    cache.delete("", "", "eth0")
    assert len(cache.attachments()) == 2


def test_entries_appear_and_go_durably(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The results directory is fsync'd after an entry is renamed into place or removed
    (issue 13): a crash cannot bring back a deleted entry nor lose a written one."""
    synced_dirs: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if os.path.isdir(path):
            synced_dirs.append(path)
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    cache = ResultCache(str(tmp_path))
    cache.write(entry())
    assert synced_dirs == [str(tmp_path / "results")]
    cache.delete("net1", "c1", "eth0")
    assert synced_dirs == [str(tmp_path / "results")] * 2
    assert cache.read("net1", "c1", "eth0") is None
