"""The environment of a plugin call."""

from __future__ import annotations

import pytest

from podnet.cni import plugin_environ


def test_a_call_gets_this_process_environment_but_not_its_cni_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CNI_COMMAND", "VERSION")
    monkeypatch.setenv("CNI_IFNAME", "stale0")
    monkeypatch.setenv("PODNET_LOG_FILE", "/tmp/plugins.log")
    environ = plugin_environ({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1"})
    assert environ["CNI_COMMAND"] == "ADD"
    assert environ["CNI_CONTAINERID"] == "c1"
    assert "CNI_IFNAME" not in environ, "the caller's own CNI_* must not leak into a call"
    assert environ["PODNET_LOG_FILE"] == "/tmp/plugins.log"
