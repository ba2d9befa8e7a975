"""ProcessExec against real (script) plugin processes: errors, garbage, timeouts, env."""

from __future__ import annotations

import json
import time

import pytest

from podnet.cni import CNIError, DecodingFailure, TryAgainLater
from podnet.runtime import CNI, PluginFailed, ProcessExec, RuntimeConf, conflist_from_bytes
from tests.runtime.script_plugins import read_log, write_plugin


def network(*types: str, version: str = "1.0.0"):
    obj = {"cniVersion": version, "name": "n", "plugins": [{"type": t} for t in types]}
    return conflist_from_bytes(json.dumps(obj).encode())


RT = RuntimeConf("c1", "/nonexistent/netns", "eth0", args=(("IgnoreUnknown", "1"),))


@pytest.mark.parametrize(
    ("action", "error_type", "message"),
    [
        ("fail", TryAgainLater, "plugin p failed (add): p refuses ADD"),
        (
            "garbage-fail",
            DecodingFailure,
            "plugin p failed (add): netplugin failed but error parsing its diagnostic "
            "message 'Traceback: something broke'",
        ),
        ("stderr-fail", CNIError, "plugin p failed (add): netplugin failed: 'p crashed on ADD'"),
        ("garbage", DecodingFailure, "plugin p failed (add): failed to decode plugin result"),
    ],
)
def test_plugin_errors_come_back_typed(tmp_path, action, error_type, message) -> None:
    write_plugin(str(tmp_path / "bin"), "p", ADD=action)
    cni = CNI([str(tmp_path / "bin")], cache_dir=str(tmp_path / "cache"))
    with pytest.raises(PluginFailed) as info:
        cni.add(network("p"), RT)
    assert str(info.value).startswith(message)
    assert type(info.value.cause) is error_type


def test_a_hanging_plugin_is_killed_after_the_timeout(tmp_path) -> None:
    log = str(tmp_path / "calls.jsonl")
    write_plugin(str(tmp_path / "bin"), "first", log=log)
    write_plugin(str(tmp_path / "bin"), "hang", ADD="hang")
    cni = CNI(
        [str(tmp_path / "bin")], cache_dir=str(tmp_path / "cache"), exec_=ProcessExec(timeout=3)
    )
    started = time.monotonic()
    with pytest.raises(PluginFailed, match=r"plugin hang failed \(add\): .*timed out after 3s"):
        cni.add(network("first", "hang"), RT)
    # The hanging plugin sleeps for ever: coming back at all shows the deadline. The
    # timeout leaves room for the first (Python) plugin to start on a loaded machine.
    assert time.monotonic() - started < 60
    assert [c["command"] for c in read_log(log)] == ["ADD", "DEL"], "the first plugin is undone"
    assert cni.cache.attachments() == []


def test_the_runtime_s_own_cni_variables_do_not_leak(tmp_path, monkeypatch) -> None:
    log = str(tmp_path / "calls.jsonl")
    write_plugin(str(tmp_path / "bin"), "p", log=log)
    monkeypatch.setenv("CNI_IFNAME", "wrong0")
    monkeypatch.setenv("CNI_STRAY", "1")
    CNI([str(tmp_path / "bin")], cache_dir=str(tmp_path / "cache")).add(network("p"), RT)
    (call,) = read_log(log)
    assert call["env"] == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "c1",
        "CNI_NETNS": "/nonexistent/netns",
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": "IgnoreUnknown=1",
        "CNI_PATH": str(tmp_path / "bin"),
    }


def test_validate_runs_version(tmp_path) -> None:
    write_plugin(str(tmp_path / "bin"), "p")
    cni = CNI([str(tmp_path / "bin")], cache_dir=str(tmp_path / "cache"))
    cni.validate(network("p", version="1.1.0"))
    with pytest.raises(CNIError, match='plugin p does not support config version "0.3.0"'):
        cni.validate(network("p", version="0.3.0"))
