"""The chain logic of podnet.runtime.CNI over a fake Exec: order, prevResult, runtimeConfig,
CNI_ARGS, undo, the result cache, CHECK, DEL, GC, STATUS, validation."""

from __future__ import annotations

import base64
import json
import os
import stat
from typing import Any

import pytest

from podnet.cni import (
    LEGACY_ATTACHMENTS_KEY,
    VALID_ATTACHMENTS_KEY,
    CNIError,
    DecodingFailure,
    IncompatibleVersion,
    TryAgainLater,
)
from podnet.runtime import (
    CNI,
    GCAttachment,
    NetworkConfigList,
    PluginErrors,
    PluginFailed,
    RuntimeConf,
    conflist_from_bytes,
    pod_args,
)
from tests.runtime.fake_exec import Call, FakeExec, fail_on, ipam, ok

PATHS = ("/opt/a", "/opt/b")


def network(*plugins: dict[str, Any], version: str = "1.0.0", **extra: Any) -> NetworkConfigList:
    obj = {"cniVersion": version, "name": "net1", "plugins": list(plugins), **extra}
    return conflist_from_bytes(json.dumps(obj).encode())


def rt(container_id: str = "c1", netns: str = "/run/netns/x", **kwargs: Any) -> RuntimeConf:
    args = pod_args(namespace="ns", name="pod", infra_container_id=container_id, uid="u-1")
    return RuntimeConf(container_id, netns, "eth0", args=args, **kwargs)


@pytest.fixture
def cache_dir(tmp_path) -> str:
    return str(tmp_path / "cache")


def make_cni(cache_dir: str, **plugins: Any) -> tuple[CNI, FakeExec]:
    fake = FakeExec(plugins)
    return CNI(PATHS, cache_dir=cache_dir, exec_=fake), fake


# ---- ADD ------------------------------------------------------------------------------


def test_add_runs_plugins_in_order_and_chains_prev_result(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, main=ipam("10.244.1.5/24"), meta=ok)
    net = network({"type": "main", "bridge": "cni0"}, {"type": "meta"})
    result = cni.add(net, rt())
    assert fake.commands() == [("main", "ADD"), ("meta", "ADD")]
    first, second = fake.calls
    assert "prevResult" not in first.config
    assert second.prev_result["ips"] == [{"address": "10.244.1.5/24", "interface": 0}]
    for call in fake.calls:
        assert call.config["name"] == "net1"
        assert call.config["cniVersion"] == "1.0.0"
    assert first.config["bridge"] == "cni0"
    assert str(result.ips[0].address) == "10.244.1.5/24"


def test_add_environment_is_libcni_s(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, main=ipam("10.244.1.5/24"))
    cni.add(network({"type": "main"}), rt("abc"))
    assert fake.calls[0].env == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "abc",
        "CNI_NETNS": "/run/netns/x",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/opt/a:/opt/b",
        "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod;"
        "K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1",
    }


def test_runtime_config_holds_only_declared_capabilities(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, main=ipam("10.244.1.5/24"), pm=ok, plain=ok)
    net = network(
        {"type": "main", "capabilities": {"ips": True, "mac": False}},
        {"type": "pm", "capabilities": {"portMappings": True}, "runtimeConfig": {"stale": 1}},
        {"type": "plain"},
    )
    caps = {"ips": ["10.244.1.9"], "mac": "aa:bb", "portMappings": [{"hostPort": 80}]}
    cni.add(net, rt(capability_args=caps))
    main, pm, plain = (c.config for c in fake.calls)
    assert main["runtimeConfig"] == {"ips": ["10.244.1.9"]}
    assert pm["runtimeConfig"] == {"portMappings": [{"hostPort": 80}]}
    assert "runtimeConfig" not in plain


def test_add_caches_the_result_in_libcni_format(cache_dir) -> None:
    cni, _ = make_cni(cache_dir, main=ipam("10.244.1.5/24"))
    net = network({"type": "main"})
    cni.add(net, rt("c1", capability_args={"ips": ["x"]}))
    path = os.path.join(cache_dir, "results", "net1-c1-eth0")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with open(path) as handle:
        cached = json.load(handle)
    assert list(cached) == [
        "kind",
        "containerId",
        "config",
        "ifName",
        "networkName",
        "netns",
        "cniArgs",
        "capabilityArgs",
        "result",
    ]
    assert cached["kind"] == "cniCacheV1"
    assert base64.b64decode(cached["config"]) == net.raw
    assert cached["cniArgs"][0] == ["IgnoreUnknown", "1"]
    assert cached["capabilityArgs"] == {"ips": ["x"]}
    assert cached["result"]["ips"] == [{"address": "10.244.1.5/24", "interface": 0}]


def test_add_converts_results_to_the_list_version(cache_dir) -> None:
    def old_plugin(call: Call) -> dict[str, Any] | None:
        # answers in 0.4.0 although the config says 1.0.0; and leaves cniVersion out
        return {"ips": [{"version": "4", "address": "10.244.1.7/24"}], "cniVersion": "0.4.0"}

    def no_version(call: Call) -> dict[str, Any]:
        return {"ips": call.prev_result["ips"]}

    cni, fake = make_cni(cache_dir, old=old_plugin, nover=no_version, meta=ok)
    result = cni.add(network({"type": "old"}, {"type": "nover"}, {"type": "meta"}), rt())
    assert fake.calls[1].prev_result == {
        "cniVersion": "1.0.0",
        "ips": [{"address": "10.244.1.7/24"}],
        "dns": {},
    }
    assert fake.calls[2].prev_result["cniVersion"] == "1.0.0"
    assert result.cni_version == "1.0.0"


def test_failed_add_undoes_in_reverse_and_names_the_plugin(cache_dir) -> None:
    error = TryAgainLater("busy", "try later")
    cni, fake = make_cni(cache_dir, a=ipam("10.244.1.5/24"), b=fail_on("ADD", error=error), c=ok)
    with pytest.raises(PluginFailed) as info:
        cni.add(network({"type": "a"}, {"type": "b"}, {"type": "c"}), rt())
    assert str(info.value) == "plugin b failed (add): busy; try later"
    assert info.value.code == 11
    assert isinstance(info.value.cause, TryAgainLater)
    assert fake.commands() == [("a", "ADD"), ("b", "ADD"), ("b", "DEL"), ("a", "DEL")]
    # the undo DELs carry what the chain had produced so far
    assert fake.calls[2].prev_result["ips"][0]["address"] == "10.244.1.5/24"
    assert not os.path.exists(os.path.join(cache_dir, "results", "net1-c1-eth0"))


def test_failed_undo_keeps_the_attachment_for_gc(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, a=fail_on("DEL"), b=fail_on("ADD"))
    net = network({"type": "a"}, {"type": "b"})
    with pytest.raises(PluginErrors) as info:
        cni.add(net, rt())
    text = str(info.value)
    assert "plugin b failed (add)" in text
    assert "plugin a failed (delete)" in text
    assert "kept in the cache for GC" in text
    assert [a.container_id for a in cni.cache.attachments()] == ["c1"]
    cni.exec = FakeExec({"a": ok, "b": ok})  # the plugin is repaired
    report = cni.gc(net, [])
    assert report.deleted == [GCAttachment("c1", "eth0")]
    assert cni.cache.attachments() == []


def test_missing_plugin_is_found_before_any_add(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, a=ipam("10.244.1.5/24"))
    with pytest.raises(
        PluginFailed, match=r'plugin nope failed \(add\): failed to find plugin "nope"'
    ):
        cni.add(network({"type": "a"}, {"type": "nope"}), rt())
    assert fake.calls == []


def test_garbage_result_fails_the_add_and_is_undone(cache_dir) -> None:
    class GarbageExec(FakeExec):
        def exec_plugin(self, executable, cni_env, stdin):
            out = super().exec_plugin(executable, cni_env, stdin)
            return b"<html>oops" if executable.endswith("/b") and out else out

    fake = GarbageExec({"a": ipam("10.244.1.5/24"), "b": ok})
    cni = CNI(PATHS, cache_dir=cache_dir, exec_=fake)
    with pytest.raises(PluginFailed) as info:
        cni.add(network({"type": "a"}, {"type": "b"}), rt())
    assert isinstance(info.value.cause, DecodingFailure)
    assert str(info.value).startswith("plugin b failed (add): failed to decode plugin result")
    assert fake.commands()[-2:] == [("b", "DEL"), ("a", "DEL")]


@pytest.mark.parametrize(
    ("container_id", "ifname"), [("", "eth0"), ("bad id", "eth0"), ("c1", "x" * 16)]
)
def test_add_validates_the_runtime_conf(cache_dir, container_id, ifname) -> None:
    cni, fake = make_cni(cache_dir, a=ok)
    with pytest.raises(CNIError):
        cni.add(network({"type": "a"}), RuntimeConf(container_id, "/x", ifname))
    assert fake.calls == []


# ---- CHECK ----------------------------------------------------------------------------


def test_check_uses_the_cached_result(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, a=ipam("10.244.1.5/24"), b=ok)
    net = network({"type": "a"}, {"type": "b"})
    cni.add(net, rt())
    fake.calls.clear()
    cni.check(net, rt())
    assert fake.commands() == [("a", "CHECK"), ("b", "CHECK")]
    assert all(c.prev_result["ips"][0]["address"] == "10.244.1.5/24" for c in fake.calls)


def test_check_stops_at_the_first_failure(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, a=fail_on("CHECK"), b=ok)
    net = network({"type": "a"}, {"type": "b"})
    cni.add(net, rt())
    fake.calls.clear()
    with pytest.raises(PluginFailed, match=r"plugin a failed \(check\)"):
        cni.check(net, rt())
    assert fake.commands() == [("a", "CHECK")]


def test_check_respects_disable_check_and_old_versions(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, a=ok)
    cni.check(network({"type": "a"}, disableCheck="true"), rt())
    with pytest.raises(IncompatibleVersion, match="does not support the CHECK command"):
        cni.check(network({"type": "a"}, version="0.3.1"), rt())
    with pytest.raises(CNIError, match="no cached result"):
        cni.check(network({"type": "a"}), rt())
    assert fake.calls == []


# ---- DEL ------------------------------------------------------------------------------


def test_delete_runs_in_reverse_with_the_cached_result(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, a=ipam("10.244.1.5/24"), b=ok, c=ok)
    net = network({"type": "a"}, {"type": "b"}, {"type": "c"})
    cni.add(net, rt())
    fake.calls.clear()
    cni.delete(net, rt())
    assert fake.commands() == [("c", "DEL"), ("b", "DEL"), ("a", "DEL")]
    assert all(c.prev_result["ips"][0]["address"] == "10.244.1.5/24" for c in fake.calls)
    assert cni.cache.attachments() == []


def test_a_failing_del_does_not_stop_the_others(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, a=ipam("10.244.1.5/24"), b=fail_on("DEL"), c=fail_on("DEL"))
    net = network({"type": "a"}, {"type": "b"}, {"type": "c"})
    cni.add(net, rt())
    fake.calls.clear()
    with pytest.raises(PluginErrors) as info:
        cni.delete(net, rt())
    assert fake.commands() == [("c", "DEL"), ("b", "DEL"), ("a", "DEL")]
    assert [e.plugin_type for e in info.value.errors] == ["c", "b"]  # type: ignore[attr-defined]
    assert str(info.value) == (
        "plugin c failed (delete): c refuses DEL; plugin b failed (delete): b refuses DEL"
    )
    assert len(cni.cache.attachments()) == 1, "the cache entry stays until every DEL succeeds"
    cni.exec = FakeExec({"a": ok, "b": ok, "c": ok})
    cni.delete(net, rt())
    assert cni.cache.attachments() == []


def test_delete_before_0_4_0_sends_no_prev_result(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, a=ipam("10.244.1.5/24"))
    net = network({"type": "a"}, version="0.3.1")
    cni.add(net, rt())
    cni.delete(net, rt())
    assert "prevResult" not in fake.calls[-1].config


def test_delete_with_an_unreadable_cache_entry_still_deletes(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, a=ok)
    net = network({"type": "a"})
    path = cni.cache.path("net1", "c1", "eth0")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write("{not json")
    cni.delete(net, rt())
    assert fake.commands() == [("a", "DEL")]
    assert "prevResult" not in fake.calls[0].config
    assert not os.path.exists(path)


def test_delete_without_cache_entry_and_repeated(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, a=ok)
    net = network({"type": "a"})
    cni.delete(net, rt(netns=""))
    cni.delete(net, rt(netns=""))
    assert fake.commands() == [("a", "DEL"), ("a", "DEL")]
    assert fake.calls[0].env["CNI_NETNS"] == ""


# ---- GC -------------------------------------------------------------------------------


def _add_three(cni: CNI, net: NetworkConfigList, tmp_path) -> None:
    live = tmp_path / "not-a-netns"
    live.write_text("")
    for cid in ("keep", "stale1", "stale2"):
        cni.add(net, rt(cid, netns=str(live), capability_args={"ips": [cid]}))


def test_gc_deletes_stale_attachments_then_sends_gc(cache_dir, tmp_path) -> None:
    cni, fake = make_cni(cache_dir, a=ipam("10.244.1.5/24"), b=ok)
    net = network({"type": "a", "capabilities": {"ips": True}}, {"type": "b"}, version="1.1.0")
    _add_three(cni, net, tmp_path)
    other = network({"type": "a"}, version="1.1.0")
    other = conflist_from_bytes(other.raw.replace(b'"net1"', b'"net2"'))
    cni.add(other, rt("stale-other"))
    fake.calls.clear()

    report = cni.gc(net, [GCAttachment("keep", "eth0")])

    assert sorted(a.container_id for a in report.deleted) == ["stale1", "stale2"]
    dels = [c for c in fake.calls if c.command == "DEL"]
    assert [(c.plugin, c.env["CNI_CONTAINERID"]) for c in dels] == [
        ("b", "stale1"),
        ("a", "stale1"),
        ("b", "stale2"),
        ("a", "stale2"),
    ]
    # DEL from the cache: its CNI_ARGS and capability args; a netns that is no namespace
    # any more goes out empty
    assert dels[1].env["CNI_NETNS"] == ""
    assert "K8S_POD_INFRA_CONTAINER_ID=stale1" in dels[1].env["CNI_ARGS"]
    assert dels[1].config["runtimeConfig"] == {"ips": ["stale1"]}
    gcs = [c for c in fake.calls if c.command == "GC"]
    assert [c.plugin for c in gcs] == ["a", "b"]
    valid = [{"containerID": "keep", "ifname": "eth0"}]
    assert gcs[0].config[VALID_ATTACHMENTS_KEY] == valid
    assert gcs[0].config[LEGACY_ATTACHMENTS_KEY] == valid
    assert gcs[0].env["CNI_CONTAINERID"] == "" and gcs[0].env["CNI_PATH"] == "/opt/a:/opt/b"
    assert "prevResult" not in gcs[0].config
    assert report.gc_sent and report.errors == []
    left = sorted(a.container_id for a in cni.cache.attachments())
    assert left == ["keep", "stale-other"]


def test_gc_before_1_1_0_only_deletes(cache_dir, tmp_path) -> None:
    cni, fake = make_cni(cache_dir, a=ipam("10.244.1.5/24"))
    net = network({"type": "a"}, version="1.0.0")
    _add_three(cni, net, tmp_path)
    fake.calls.clear()
    report = cni.gc(net, [GCAttachment("keep", "eth0")])
    assert len(report.deleted) == 2 and not report.gc_sent
    assert {c.command for c in fake.calls} == {"DEL"}


def test_gc_disabled_does_nothing(cache_dir, tmp_path) -> None:
    cni, fake = make_cni(cache_dir, a=ipam("10.244.1.5/24"))
    net = network({"type": "a"}, version="1.1.0", disableGC=True)
    _add_three(cni, net, tmp_path)
    fake.calls.clear()
    report = cni.gc(net, [])
    assert report.skipped and fake.calls == []
    assert len(cni.cache.attachments()) == 3


def test_gc_deletes_with_the_config_the_add_ran_with(cache_dir, tmp_path) -> None:
    cni, fake = make_cni(cache_dir, old=ipam("10.244.1.5/24"), new=ok)
    cni.add(network({"type": "old"}), rt("c1"))
    fake.calls.clear()
    report = cni.gc(network({"type": "new"}), [])
    assert fake.commands() == [("old", "DEL")]
    assert report.deleted == [GCAttachment("c1", "eth0")]


def test_gc_reports_every_failure_and_goes_on(cache_dir, tmp_path) -> None:
    cni, fake = make_cni(cache_dir, a=ipam("10.244.1.5/24"))
    net = network({"type": "a"}, version="1.1.0")
    _add_three(cni, net, tmp_path)
    cni.exec = FakeExec({"a": fail_on("DEL", "GC")})
    report = cni.gc(net, [GCAttachment("keep", "eth0")])
    assert report.deleted == []
    assert len(report.errors) == 3
    assert "failed to delete stale attachment stale1 eth0" in str(report.errors[0])
    assert str(report.errors[2]) == "plugin a failed (gc): a refuses GC"


# ---- STATUS and validation ------------------------------------------------------------


def test_status_asks_every_plugin(cache_dir) -> None:
    cni, fake = make_cni(cache_dir, a=fail_on("STATUS"), b=ok)
    statuses = cni.status(network({"type": "a"}, {"type": "b"}, version="1.1.0"))
    assert [(s.plugin_type, s.error is None) for s in statuses] == [("a", False), ("b", True)]
    assert str(statuses[0].error) == "plugin a failed (status): a refuses STATUS"
    assert fake.calls[0].env["CNI_COMMAND"] == "STATUS"
    fake.calls.clear()
    assert cni.status(network({"type": "a"}, version="1.0.0")) == []
    assert fake.calls == []


def test_validate_reports_every_problem(cache_dir) -> None:
    fake = FakeExec({"a": ok, "old": ok}, versions={"old": ["0.3.1", "0.4.0"]})
    cni = CNI(PATHS, cache_dir=cache_dir, exec_=fake)
    net = network(
        {"type": "a", "capabilities": {"portMappings": True, "mac": False}},
        {"type": "old"},
        {"type": "missing"},
    )
    with pytest.raises(PluginErrors) as info:
        cni.validate(net)
    text = str(info.value)
    assert 'plugin old does not support config version "1.0.0"' in text
    assert 'plugin missing failed (version): failed to find plugin "missing"' in text
    assert cni.validate(network({"type": "a", "capabilities": {"ips": True}})) == ("ips",)


def test_validate_treats_a_plugin_without_version_as_0_1_0(cache_dir) -> None:
    class AncientExec(FakeExec):
        def exec_plugin(self, executable, cni_env, stdin):
            if cni_env["CNI_COMMAND"] == "VERSION":
                raise CNIError("unknown CNI_COMMAND: VERSION")
            return super().exec_plugin(executable, cni_env, stdin)

    cni = CNI(PATHS, cache_dir=cache_dir, exec_=AncientExec({"a": ok}))
    cni.validate(network({"type": "a"}, version="0.1.0"))
    with pytest.raises(PluginErrors, match="does not support"):
        cni.validate(network({"type": "a"}, version="0.3.1"))
