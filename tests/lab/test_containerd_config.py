"""containerd's config and mount parsing: the parts that need no daemon."""

from __future__ import annotations

import tomllib

from podnet.lab import mounts_under
from podnet.lab._containerd import render_config
from podnet.lab._host import _unescape_mountinfo


def test_config_carries_the_lessons_learnt() -> None:
    text = render_config(
        root="/w/root",
        state="/w/state",
        socket_path="/w/containerd.sock",
        opt_dir="/w/opt",
        runc_root="/w/runc",
        cni_bin_dir="/usr/lib/cni",
        cni_conf_dir='/w/net "d"',
        snapshotter="native",
        sandbox_image="localhost/podnet/pause:1.0",
    )
    config = tomllib.loads(text)
    assert (config["version"], config["root"], config["state"]) == (2, "/w/root", "/w/state")
    assert config["grpc"]["address"] == "/w/containerd.sock"
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["sandbox_image"] == "localhost/podnet/pause:1.0"
    assert cri["cni"] == {"bin_dir": "/usr/lib/cni", "conf_dir": '/w/net "d"', "max_conf_num": 1}
    assert cri["containerd"]["snapshotter"] == "native"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {"Root": "/w/runc", "SystemdCgroup": False}
    assert config["plugins"]["io.containerd.internal.v1.opt"]["path"] == "/w/opt"


def test_mountinfo_escapes() -> None:
    assert _unescape_mountinfo(r"/tmp/a\040b\011c\134d") == "/tmp/a b\tc\\d"
    assert _unescape_mountinfo("/plain") == "/plain"


def test_mounts_under_a_plain_dir_is_empty(tmp_path) -> None:
    assert mounts_under(str(tmp_path)) == []
    under_proc = mounts_under("/proc")
    assert under_proc[-1] == "/proc", "deepest first, so the parent is unmounted last"
    assert all(point.startswith("/proc") for point in under_proc)
