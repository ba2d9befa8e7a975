"""Delegation between plugins (libcni's DelegateAdd/Check/Del/GC/Status), through the
`Exec` the request's host hands in (libcni's invoke.Exec; podnet.cni.Host.plugin_exec).

The default is `PodnetExec`: it finds the delegate's type in CNI_PATH as the spec says,
and when the executable found there is one of podnet's own (a launcher, by its trailer; a
Python thin executable, by its marker line) the plugin runs in this process, with the
caller's host: same result, no second interpreter start. Anything else (a reference Go
binary, say) is exec'd. Any other Exec (a test's recording one) gets every call.
"""

from __future__ import annotations

import os

from podnet.cni import (
    ATTACHMENT_VERBS,
    LOCKED_ENV,
    Exec,
    Plugin,
    RawExec,
    Request,
    Result,
    call,
    decode_result,
    fixup_result_version,
)
from podnet.plugins import PLUGIN_MODULES, load_plugin
from podnet.plugins._launcher import launcher_type_of

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any

MARKER = b"# podnet-cni-executable type="


# What podnet_type_of found, by the file's identity: the warm agent delegates twice per
# pod to the same two executables, and reading their heads and trailers again costs nine
# system calls each time; a replaced or rewritten file has another identity. Bounded,
# for the CNI_PATH of a node holds a handful of executables.
_TYPES_SEEN: dict[str, tuple[tuple[int, ...], str | None]] = {}
_TYPES_SEEN_MAX = 256


def podnet_type_of(executable: str) -> str | None:
    """The plugin type a podnet executable runs (a launcher, by the settings appended to
    it; a Python thin executable, by its marker line), or None for any other file."""
    try:
        st = os.stat(executable)
    except OSError:
        return None
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    seen = _TYPES_SEEN.get(executable)
    if seen is not None and seen[0] == identity:
        return seen[1]
    found = _read_type(executable)
    if len(_TYPES_SEEN) >= _TYPES_SEEN_MAX:
        _TYPES_SEEN.clear()
    _TYPES_SEEN[executable] = (identity, found)
    return found


def _read_type(executable: str) -> str | None:
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


class PodnetExec(RawExec):
    """A RawExec that runs podnet's own executables in this process instead."""

    def plugin_here(self, executable: str) -> Plugin | None:
        """The plugin to run in this process for `executable`; None to exec it."""
        plugin_type = podnet_type_of(executable)
        return None if plugin_type is None else load_plugin(plugin_type)


_DEFAULT_EXEC = PodnetExec()


def delegate(
    command: str, plugin_type: str, config: dict[str, Any], request: Request
) -> Result | None:
    """Run `command` of the plugin `plugin_type` with `config`, on behalf of `request`."""
    exec_: Exec = request.host.plugin_exec or _DEFAULT_EXEC
    executable = exec_.find_in_path(plugin_type, request.path)
    sub_request = request.with_config(command, config)
    here = exec_.plugin_here(executable) if isinstance(exec_, PodnetExec) else None
    if here is not None:
        result = call(here, sub_request)
        if result is not None:
            # Hand the result over as the delegate's output would be: in the config's version.
            result = Result.from_json(result.to_json(sub_request.cni_version))
        return result
    environ = sub_request.environ()
    if command in ATTACHMENT_VERBS:
        environ[LOCKED_ENV] = "1"  # this call holds the attachment's lock (see the skel)
    stdout = exec_.exec_plugin(executable, environ, sub_request.stdin)
    if command != "ADD":
        return None
    return Result.from_json(fixup_result_version(decode_result(stdout), sub_request.cni_version))


def delegate_add(plugin_type: str, config: dict[str, Any], request: Request) -> Result:
    result = delegate("ADD", plugin_type, config, request)
    assert result is not None
    return result


__all__ = ["MARKER", "PodnetExec", "delegate", "delegate_add", "podnet_type_of"]
