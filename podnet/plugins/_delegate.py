"""Delegation between plugins (libcni's DelegateAdd/Check/Del/GC/Status).

The delegate's type is looked up in CNI_PATH as the spec says. When the executable found
there is one of podnet's own, the plugin runs in this process: same result, no second
interpreter start. Anything else (a reference Go binary, say) is exec'd.
"""

from __future__ import annotations

from typing import Any

from podnet.cni import (
    ATTACHMENT_VERBS,
    LOCKED_ENV,
    Request,
    Result,
    call,
    decode_result,
    exec_plugin,
    find_in_path,
    fixup_result_version,
    plugin_environ,
)
from podnet.plugins import PLUGIN_MODULES, load_plugin
from podnet.plugins._launcher import launcher_type_of

MARKER = b"# podnet-cni-executable type="


def podnet_type_of(executable: str) -> str | None:
    """The plugin type a podnet executable runs (a launcher, by the settings appended to
    it; a Python thin executable, by its marker line), or None for any other file."""
    try:
        with open(executable, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return None
    if head.startswith(b"\x7fELF"):
        found = launcher_type_of(executable)
    else:
        start = head.find(MARKER)
        if start < 0:
            return None
        found = head[start + len(MARKER) :].split(b"\n", 1)[0].strip().decode(errors="replace")
    return found if found in PLUGIN_MODULES else None


def delegate(
    command: str, plugin_type: str, config: dict[str, Any], request: Request
) -> Result | None:
    """Run `command` of the plugin `plugin_type` with `config`, on behalf of `request`."""
    executable = find_in_path(plugin_type, request.path)
    sub_request = request.with_config(command, config)
    ours = podnet_type_of(executable)
    if ours is not None:
        result = call(load_plugin(ours), sub_request)
        if result is not None:
            # Hand the result over as the delegate's output would be: in the config's version.
            result = Result.from_json(result.to_json(sub_request.cni_version))
        return result
    environ = plugin_environ(sub_request.environ())
    if command in ATTACHMENT_VERBS:
        environ[LOCKED_ENV] = "1"  # this call holds the attachment's lock (see the skel)
    stdout = exec_plugin(executable, environ, sub_request.stdin)
    if command != "ADD":
        return None
    return Result.from_json(fixup_result_version(decode_result(stdout), sub_request.cni_version))


def delegate_add(plugin_type: str, config: dict[str, Any], request: Request) -> Result:
    result = delegate("ADD", plugin_type, config, request)
    assert result is not None
    return result


__all__ = ["MARKER", "delegate", "delegate_add", "podnet_type_of"]
