"""The launcher's in-process fallback, the path every pod takes while the agent restarts,
imports only what its verb needs. A pod's ADD and DEL through flannel -> bridge ->
host-local run exactly as the launcher execs them when no agent answers (its fallback
argv, with one line that records sys.modules at exit), and the modules that made the
fallback slow must stay out: dataclasses and what it loads (inspect, ast, dis), the
parts of podnet.netlink a pod does not use (nftables' binding, when the pod has no
masquerade), anything of the agent's, and the standard modules that only type hints or
constants came from: typing (~10 million instructions), socket (~11 million: it wraps
every constant in an IntEnum; `_socket` serves). Counting
modules, not milliseconds: a timing assertion would fail on a loaded machine, this one
fails only when an import comes back."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from podnet.plugins._bundle import bundle_path, write_bundle
from podnet.plugins._install import _repo_root, _sys_path
from podnet.plugins._launcher import build_launcher, fallback_argv, settings_trailer
from tests.plugins.flannel._chain import ChainNode

pytestmark = pytest.mark.root

# FLANNEL_IPMASQ=true: the agent masquerades, so bridge does not (kube-flannel's default).
SUBNET_ENV = (
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\n"
    "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
)
# Each was on this path before and cost every such pod milliseconds of import.
NOT_IMPORTED = [
    # json's Python modules import re, and re imports enum (~15 million instructions):
    # the pod path parses and writes JSON with json's C accelerator (podnet._json)
    "json",
    "re",
    "enum",
    # ~5 million instructions for one setns: podnet.netlink._libc calls libc through
    # ctypes' C core, _ctypes
    "ctypes",
    # ~4 million: locks come from _thread (threading.Lock is _thread's), and bridge's DEL
    # destroys the veth on a _thread thread
    "threading",
    # ~1 million: podnet._lazy imports by __import__
    "importlib",
    "warnings",
    "dataclasses",
    "typing",
    "socket",
    "selectors",
    "inspect",
    "ast",
    "dis",
    "tokenize",
    "pyroute2",
    "subprocess",
    "hashlib",
    "logging",
    "asyncio",
    "podnet.netlink._vxlan",
    "podnet.netlink._neigh",
    "podnet.netlink._tagged_routes",
    "podnet.netlink._lab_links",
    "podnet.netlink._nft",
    "podnet.plugins.main.bridge._masq",  # the pod has no masquerade
    "podnet._wire",  # the fallback talks to no agent
    "podnet.agent",
    "podnet.runtime",
    "podnet.store",
]

BRIDGE_ADD_ONLY = [
    "podnet.plugins.main.bridge._add",
    "podnet.plugins.main.bridge._gateway",
    "podnet.plugins.main.bridge._pod",
    "podnet.plugins.main.bridge._veth",
]
BRIDGE_DEL_ONLY = ["podnet.plugins.main.bridge._delete"]
BRIDGE_CHECK_ONLY = ["podnet.plugins.main.bridge._check"]


def recording_flannel(bin_dir: Path, agent_socket: Path, record: Path) -> Path:
    """The launcher under the name flannel, as install-cni writes it (with the bundle of
    the plugin path's modules), but its fallback also writes the names of the modules it
    imported to `record` at exit, the bundle's ones with a "bundled " line too, and
    whether the garbage collector was on (it is off: the process exits after one call)."""
    assert write_bundle(_repo_root(), _sys_path()) is None
    bundle = bundle_path(_repo_root())
    argv = fallback_argv("flannel", str(agent_socket), _sys_path(), bundle)
    code = argv.pop()
    bundled = (
        "[f'bundled {n}' for n, m in list(sys.modules.items()) "
        "if type(getattr(getattr(m, '__spec__', None), 'loader', None)).__name__ "
        "== 'BundleFinder']"
    )
    lines = f"[*sys.modules, *{bundled}, f'gc.isenabled()={{gc.isenabled()}}']"
    dump = f"open({str(record)!r}, 'w').write(chr(10).join({lines}))"
    argv.append(f"import atexit, gc, sys; atexit.register(lambda: {dump}); {code}")
    exe = bin_dir / "flannel-recording"
    exe.write_bytes(Path(build_launcher()).read_bytes() + settings_trailer("flannel", "", argv))
    exe.chmod(0o755)
    return exe


def test_a_pod_through_the_fallback_imports_only_what_it_needs(
    cni_bin: Path, node_netns: str, pod_netns: Callable[[], str], tmp_path: Path
) -> None:
    chain = ChainNode(
        node=node_netns, root=tmp_path, bin_dir=cni_bin / "bin", subnet_env_text=SUBNET_ENV
    )
    record = tmp_path / "modules"
    exe = recording_flannel(tmp_path, tmp_path / "no-agent.sock", record)
    cni = chain.runner(str(chain.bin_dir))
    conf = chain.flannel_conf("1.1.0")
    pod = pod_netns()

    added = cni.run("ADD", conf, netns=pod, executable=str(exe))
    assert added.ok, added.out or added.stderr
    assert added.out is not None
    assert [ip["address"] for ip in added.out["ips"]] == ["10.244.1.2/24"]
    on_add = set(record.read_text().split("\n"))
    assert "podnet.plugins.main.bridge" in on_add  # the delegate ran here, in-process
    assert "gc.isenabled()=False" in on_add
    assert sorted(on_add.intersection(NOT_IMPORTED)) == []
    # bridge's verbs import their own modules, each when it runs
    assert "podnet.plugins.main.bridge._add" in on_add
    # from the bundle: all of the plugin path's modules but the two read before it
    served = {line.removeprefix("bundled ") for line in on_add if line.startswith("bundled ")}
    podnet_modules = {name for name in on_add if name.startswith("podnet")}
    assert sorted(podnet_modules - served) == ["podnet", "podnet._bundle", "podnet._thin"]
    assert {"ipaddress", "collections", "podnet.plugins.ipam.host_local._store"} <= served
    assert sorted(on_add.intersection(BRIDGE_DEL_ONLY + BRIDGE_CHECK_ONLY)) == []

    record.unlink()
    deleted = cni.run("DEL", {**conf, "prevResult": added.out}, netns=pod, executable=str(exe))
    assert deleted.ok, json.dumps(deleted.out) + deleted.stderr
    on_del = set(record.read_text().split("\n"))
    assert "gc.isenabled()=False" in on_del
    assert sorted(on_del.intersection(NOT_IMPORTED)) == []
    assert "podnet.plugins.main.bridge._delete" in on_del
    assert sorted(on_del.intersection(BRIDGE_ADD_ONLY + BRIDGE_CHECK_ONLY)) == []
    assert chain.ipam_files() == []


def test_portmap_imports_no_dataclasses_nor_typing() -> None:
    """portmap runs in-process too (the launcher's fallback): its records are slotted
    like the rest of the pod path, and it names no typing at run time."""
    code = (
        "import sys; import podnet.plugins.meta.portmap._verbs; "
        "print(' '.join(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {_sys_path()!r}; {code}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(proc.stdout.split())
    assert "podnet.plugins.meta.portmap._table" in loaded
    assert sorted(loaded.intersection(["dataclasses", "typing", "inspect", "ast"])) == []
