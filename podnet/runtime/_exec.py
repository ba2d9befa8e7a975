"""How the runtime runs a plugin: an injected `Exec` (libcni's invoke.Exec, defined with
the protocol in podnet.cni), so tests can hand in a fake; `ProcessExec` runs the real
executables, each with a timeout."""

from __future__ import annotations

import json
from collections.abc import Sequence

from podnet.cni import CURRENT_VERSION, CNIError, DecodingFailure, Exec, RawExec
from podnet.runtime._types import RuntimeConf

DEFAULT_TIMEOUT = RawExec().timeout  # seconds a plugin may run


# The runtime's name for podnet.cni's process-running Exec.
ProcessExec = RawExec


def cni_env(command: str, rt: RuntimeConf | None, paths: Sequence[str]) -> dict[str, str]:
    """The CNI_* variables libcni sets for a call (all of them, empty when not used)."""
    return {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": rt.container_id if rt else "",
        "CNI_NETNS": rt.netns if rt else "",
        "CNI_ARGS": rt.cni_args if rt else "",
        "CNI_IFNAME": rt.ifname if rt else "",
        "CNI_PATH": ":".join(paths),
    }


def supported_versions(exec_: Exec, executable: str) -> tuple[str, ...]:
    """Ask a plugin which spec versions it speaks (libcni GetVersionInfo)."""
    env = {
        "CNI_COMMAND": "VERSION",
        # Plugins built on an old skel insist on these even for VERSION.
        "CNI_NETNS": "dummy",
        "CNI_IFNAME": "dummy",
        "CNI_PATH": "dummy",
        "CNI_CONTAINERID": "",
        "CNI_ARGS": "",
    }
    stdin = json.dumps({"cniVersion": CURRENT_VERSION}).encode()
    try:
        stdout = exec_.exec_plugin(executable, env, stdin)
    except CNIError as exc:
        if exc.msg == "unknown CNI_COMMAND: VERSION":  # a 0.1.0 plugin predates VERSION
            return ("0.1.0",)
        raise
    try:
        info = json.loads(stdout)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DecodingFailure(f"decoding version info: {exc}") from None
    if not isinstance(info, dict) or not isinstance(info.get("cniVersion"), str):
        raise DecodingFailure("decoding version info: missing field cniVersion")
    versions = info.get("supportedVersions")
    if not versions:
        if info["cniVersion"] == "0.2.0":
            return ("0.1.0", "0.2.0")
        raise DecodingFailure("decoding version info: missing field supportedVersions")
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        raise DecodingFailure("decoding version info: supportedVersions must be strings")
    return tuple(versions)
