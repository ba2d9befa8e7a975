"""install-cni: podnet's plugin executables into a CNI bin dir, and the network config
list into a CNI conf dir, each written atomically so a runtime never sees half a file."""

from __future__ import annotations

import json
import os
import sys
import sysconfig
from collections.abc import Callable, Iterable
from typing import Any

from podnet.cni import CURRENT_VERSION, atomic_write
from podnet.plugins import PLUGIN_MODULES
from podnet.plugins._bundle import bundle_path, write_bundle
from podnet.plugins._delegate import MARKER
from podnet.plugins._launcher import (
    LauncherUnavailable,
    build_launcher,
    fallback_argv,
    settings_trailer,
)

CONFLIST_NAME = "10-flannel.conflist"
DEFAULT_NETWORK_NAME = "cbr0"


def _repo_root() -> str:
    import podnet

    return os.path.dirname(os.path.dirname(os.path.abspath(podnet.__file__)))


def _sys_path() -> list[str]:
    return [_repo_root(), sysconfig.get_paths()["purelib"]]


def executable_text(plugin_type: str, agent_socket: str = "", bundle: str = "") -> str:
    """A thin executable: this interpreter named directly (never a shell shim), isolated
    and without site processing (-IS), with podnet and its dependencies on sys.path."""
    paths = _sys_path()
    return (
        f"#!{sys.executable} -IS\n"
        f"{MARKER.decode()}{plugin_type}\n"
        "import sys\n"
        f"sys.path[:0] = {paths!r}\n"
        "from podnet._thin import main\n"
        f"main({plugin_type!r}, agent_socket={agent_socket!r}, bundle={bundle!r})\n"
    )


def launcher_image(
    launcher: bytes, plugin_type: str, agent_socket: str = "", bundle: str = ""
) -> bytes:
    """The launcher binary with one plugin's settings appended (see launcher.c)."""
    argv = fallback_argv(plugin_type, agent_socket, _sys_path(), bundle)
    return launcher + settings_trailer(plugin_type, agent_socket, argv)


def compile_bytecode() -> str | None:
    """Write the .pyc of every podnet module now, as the installing user; returns why it
    could not, or None. The in-process fallback imports a few dozen of them per pod, and
    a module without its .pyc is compiled again by every process that imports it (the
    first pods after an install would each pay that, and none writes the .pyc where
    PYTHONDONTWRITEBYTECODE is set or the tree is not theirs to write)."""
    import compileall

    package = os.path.join(_repo_root(), "podnet")
    try:
        ok = compileall.compile_dir(package, quiet=2)
    except OSError as exc:
        return f"cannot compile {package}: {exc.strerror}"
    return None if ok else f"could not compile every module under {package}"


def _warn(message: str) -> None:
    print(f"podnet install-cni: {message}", file=sys.stderr)


def install_executables(
    bin_dir: str,
    types: Iterable[str] | None = None,
    *,
    agent_socket: str = "",
    warn: Callable[[str], None] = _warn,
    compiled: bool = True,
) -> list[str]:
    """Write one executable per plugin type; returns their paths. With `agent_socket`,
    they hand requests to the node agent listening there. Each is the compiled launcher
    (built here, see podnet.plugins._launcher); where it cannot be built, the Python thin
    executable (podnet._thin) instead, and `warn` is told why, once. `compiled=False`
    installs the thin executables without trying (the benchmark compares the two). The
    podnet modules' bytecode is written first (see compile_bytecode)."""
    chosen = sorted(types if types is not None else PLUGIN_MODULES)
    for plugin_type in chosen:
        if plugin_type not in PLUGIN_MODULES:
            raise ValueError(f"unknown plugin type {plugin_type!r}")
    os.makedirs(bin_dir, mode=0o755, exist_ok=True)
    launcher: bytes | None = None
    try:
        if compiled:
            with open(build_launcher(), "rb") as handle:
                launcher = handle.read()
    except LauncherUnavailable as exc:
        warn(f"{exc}; installing the Python thin executables instead (slower per pod)")
    problem = compile_bytecode()
    if problem is None:
        problem = write_bundle(_repo_root(), _sys_path())
    bundle = "" if problem is not None else bundle_path(_repo_root())
    if problem is not None:
        warn(f"{problem}; the plugins run, slower when they run in-process")
    written = []
    for plugin_type in chosen:
        path = os.path.join(bin_dir, plugin_type)
        if launcher is not None:
            content = launcher_image(launcher, plugin_type, agent_socket, bundle)
        else:
            content = executable_text(plugin_type, agent_socket, bundle).encode()
        atomic_write(path, content, mode=0o755)
        written.append(path)
    return written


def default_conflist(
    cni_version: str = CURRENT_VERSION,
    name: str = DEFAULT_NETWORK_NAME,
    *,
    subnet_file: str | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """kube-flannel's conflist (flannel, then portmap for hostPorts), at a version that
    lets the runtime use CHECK, GC and STATUS.
    `subnet_file` and `data_dir` (flannel's scratch configs in <data_dir>/flannel and
    host-local's reservations in <data_dir>/networks) are written only when given, so the
    default is exactly kube-flannel's shape; several nodes on one machine need them."""
    flannel: dict[str, Any] = {"type": "flannel"}
    if subnet_file is not None:
        flannel["subnetFile"] = subnet_file
    if data_dir is not None:
        flannel["dataDir"] = os.path.join(data_dir, "flannel")
        flannel["ipam"] = {"dataDir": os.path.join(data_dir, "networks")}
    flannel["delegate"] = {"hairpinMode": True, "isDefaultGateway": True}
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    return {"name": name, "cniVersion": cni_version, "plugins": [flannel, portmap]}


def write_conflist(conf_dir: str, conflist: dict[str, Any], filename: str = CONFLIST_NAME) -> str:
    path = os.path.join(conf_dir, filename)
    atomic_write(path, (json.dumps(conflist, indent=2) + "\n").encode(), mode=0o644)
    return path


__all__ = [
    "CONFLIST_NAME",
    "default_conflist",
    "executable_text",
    "install_executables",
    "launcher_image",
    "write_conflist",
]
