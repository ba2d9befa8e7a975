"""Config lists and conf dir discovery, as libcni parses and containerd picks them."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from podnet.runtime import (
    ConfError,
    NoNetworkConfig,
    conflist_from_bytes,
    conflist_from_conf,
    scan_conf_dir,
)


def write(directory, filename: str, obj: Any) -> str:
    path = os.path.join(str(directory), filename)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def conflist(name: str, *types: str, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {
        "cniVersion": version,
        "name": name,
        "plugins": [{"type": t} for t in types or ("bridge",)],
        **extra,
    }


def test_a_conflist_parses() -> None:
    data = json.dumps(conflist("cbr0", "bridge", "portmap", disableCheck=True)).encode()
    net = conflist_from_bytes(data)
    assert (net.name, net.cni_version, net.plugin_types) == ("cbr0", "1.0.0", ("bridge", "portmap"))
    assert net.disable_check and not net.disable_gc
    assert net.raw == data


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"cniVersions": ["0.4.0", "1.1.0"]}, "1.1.0"),
        ({"cniVersions": ["1.0.0", "9.0.0"]}, "1.0.0"),  # newer than we speak: ignored
        ({"cniVersion": "0.3.1", "cniVersions": ["0.4.0"]}, "0.4.0"),
    ],
)
def test_cni_versions_negotiation(extra: dict[str, Any], expected: str) -> None:
    net = conflist_from_bytes(json.dumps({**conflist("n"), **extra}).encode())
    assert net.cni_version == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("true", True), ("False", False), (False, False)]
)
def test_disable_flags_accept_booleans_and_strings(value: Any, expected: bool) -> None:
    net = conflist_from_bytes(json.dumps(conflist("n", disableGC=value)).encode())
    assert net.disable_gc is expected


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ("{not json", "not valid JSON"),
        ([], "must be a JSON object"),
        ({"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}, "no network name"),
        ({**conflist("bad name!")}, "invalid characters found in network name"),
        ({**conflist("n"), "plugins": []}, "no plugins in list"),
        ({**conflist("n"), "plugins": {"type": "bridge"}}, "'plugins' must be a list"),
        ({**conflist("n"), "plugins": [{"name": "x"}]}, "plugin 0 has no 'type'"),
        ({**conflist("n"), "plugins": [{"type": "../x"}]}, "invalid type"),
        (
            {**conflist("n"), "plugins": [{"type": "a", "capabilities": {"ips": "yes"}}]},
            "'capabilities' must map names to booleans",
        ),
        ({**conflist("n"), "disableCheck": "maybe"}, "invalid value 'maybe' for disableCheck"),
        ({**conflist("n"), "cniVersion": "2.0.0"}, "incompatible CNI versions"),
        ({"name": "n", "cniVersion": "1.0.0", "loadOnlyInlinedPlugins": True}, "no 'plugins'"),
    ],
)
def test_invalid_lists_say_why(obj: Any, reason: str) -> None:
    data = obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()
    with pytest.raises(ConfError) as info:
        conflist_from_bytes(data, source="/etc/cni/net.d/10-x.conflist")
    assert reason in str(info.value)
    assert str(info.value).startswith("invalid CNI config /etc/cni/net.d/10-x.conflist: ")


def test_a_single_conf_is_up_converted() -> None:
    conf = {"cniVersion": "0.3.1", "name": "mynet", "type": "bridge", "bridge": "cni0"}
    net = conflist_from_conf(json.dumps(conf).encode())
    assert (net.name, net.cni_version, net.plugin_types) == ("mynet", "0.3.1", ("bridge",))
    assert json.loads(net.raw) == {"cniVersion": "0.3.1", "name": "mynet", "plugins": [conf]}
    with pytest.raises(ConfError, match="network type not found"):
        conflist_from_conf(json.dumps(conflist("n")).encode())


def test_discovery_is_lexical_and_the_first_file_wins(tmp_path) -> None:
    write(tmp_path, "10-flannel.conflist", conflist("cbr0"))
    write(tmp_path, "10-containerd-net.conflist", conflist("containerd-net"))
    write(tmp_path, "99-single.conf", {"cniVersion": "1.0.0", "name": "s", "type": "bridge"})
    write(tmp_path, "20-other.json", {"cniVersion": "1.0.0", "name": "j", "type": "bridge"})
    write(tmp_path, "README.md", "not a config")
    os.mkdir(tmp_path / "50-dir.conflist")
    scan = scan_conf_dir(str(tmp_path))
    names = [os.path.basename(f) for f in scan.files]
    assert names == [
        "10-containerd-net.conflist",
        "10-flannel.conflist",
        "20-other.json",
        "99-single.conf",
    ]
    assert scan.default().name == "containerd-net"
    (warning,) = scan.warnings()
    assert 'using 10-containerd-net.conflist (network "containerd-net")' in warning
    assert "ignored: 10-flannel.conflist, 20-other.json, 99-single.conf" in warning
    single = scan.by_name("s")
    assert single is not None and single.source.endswith("99-single.conf")


def test_invalid_files_are_reported_by_name(tmp_path) -> None:
    write(tmp_path, "10-good.conflist", conflist("good"))
    write(tmp_path, "20-broken.conflist", "{")
    os.symlink(str(tmp_path / "nowhere"), str(tmp_path / "30-dangling.conf"))
    scan = scan_conf_dir(str(tmp_path))
    assert scan.default().name == "good"
    warnings = scan.warnings()
    assert any("20-broken.conflist: config list is not valid JSON" in w for w in warnings)
    assert any("30-dangling.conf: cannot read it: No such file or directory" in w for w in warnings)


def test_an_invalid_first_file_is_an_error_not_a_silent_switch(tmp_path) -> None:
    write(tmp_path, "05-typo.conflist", {"name": "x", "plugins": []})
    write(tmp_path, "10-flannel.conflist", conflist("cbr0"))
    with pytest.raises(ConfError, match="05-typo.conflist: no plugins in list"):
        scan_conf_dir(str(tmp_path)).default()


@pytest.mark.parametrize("create", [False, True])
def test_no_config_at_all(tmp_path, create: bool) -> None:
    conf_dir = tmp_path / "net.d"
    if create:
        conf_dir.mkdir()
    with pytest.raises(NoNetworkConfig, match="no network config found in"):
        scan_conf_dir(str(conf_dir)).default()


def test_plugins_are_aggregated_from_the_network_subdir(tmp_path) -> None:
    write(tmp_path, "10-a.conflist", conflist("a", "bridge"))
    write(tmp_path, "a/20-portmap.conf", {"type": "portmap"})
    write(tmp_path, "a/10-tuning.conf", {"type": "tuning"})
    write(tmp_path, "10-b.conflist", conflist("b", "bridge", loadOnlyInlinedPlugins=True))
    write(tmp_path, "b/10-portmap.conf", {"type": "portmap"})
    scan = scan_conf_dir(str(tmp_path))
    a, b = scan.by_name("a"), scan.by_name("b")
    assert a is not None and a.plugin_types == ("bridge", "tuning", "portmap")
    assert b is not None and b.plugin_types == ("bridge",)
