"""The skel: environment + stdin in, stdout bytes + exit code out.

`dispatch` is pure with respect to the process: it takes the environment and stdin as
values and returns what to print and the exit code, so tests (and the node agent, which
runs forwarded requests) call it in-process, each with the `Host` the verb gets (a fresh
default one when none is handed in). `plugin_main` is the thin wrapper an executable
calls.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from podnet import _json as json
from podnet.cni._attachment_lock import ATTACHMENT_VERBS, LOCKED_ENV, attachment_locked
from podnet.cni._errors import (
    CNIError,
    IncompatibleVersion,
    InternalError,
    InvalidNetNS,
    IOFailure,
    TryAgainLater,
)
from podnet.cni._flock import LockTimeout
from podnet.cni._host import Host
from podnet.cni._log import log
from podnet.cni._plugin import Plugin
from podnet.cni._request import Request, request_from_env
from podnet.cni._result import Result
from podnet.cni._version import CURRENT_VERSION, MIN_VERSION_FOR_VERB, at_least, parse_version

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any


def call(plugin: Plugin, request: Request) -> Result | None:
    """Run one verb of `plugin` after the version gates; raises CNIError. A host that
    keeps a trace of the request gets a span for it."""
    trace = request.host.trace
    if trace is None:
        return _call(plugin, request)
    from podnet.cni._trace import touched  # only a host that traces pays for the module

    with trace.span(plugin.name, request) as span:
        result = _call(plugin, request)
        span.outcome = touched(result)
        return result


def _call(plugin: Plugin, request: Request) -> Result | None:
    version = request.cni_version
    if version not in plugin.versions:
        raise IncompatibleVersion(
            "incompatible CNI versions",
            f"config is {version!r}, plugin supports {list(plugin.versions)}",
        )
    minimum = MIN_VERSION_FOR_VERB.get(request.command)
    if minimum is not None and not at_least(version, minimum):
        raise IncompatibleVersion(f"config version does not allow {request.command}")
    if request.command == "ADD":
        _refuse_own_netns(request)
        return plugin.add(request)
    func = {
        "DEL": plugin.delete,
        "CHECK": plugin.check,
        "GC": plugin.gc,
        "STATUS": plugin.status,
    }[request.command]
    if func is not None:
        func(request)
    return None


def _call_locked(plugin: Plugin, request: Request, environ: Mapping[str, str]) -> Result | None:
    """`call`, holding the attachment's lock for the verbs that name one (see
    podnet.cni._attachment_lock), unless a caller up the chain holds it already; a
    successful DEL removes the lock file."""
    if request.command not in ATTACHMENT_VERBS or environ.get(LOCKED_ENV) == "1":
        return call(plugin, request)
    locked = False
    try:
        with attachment_locked(request.container_id, request.ifname) as held:
            locked = True
            result = call(plugin, request)
            held.remove = request.command == "DEL"
            return result
    except LockTimeout as exc:
        if locked:
            raise
        raise TryAgainLater(
            f"another operation on {request.container_id}/{request.ifname} is still running",
            str(exc),
        ) from None
    except OSError as exc:
        if locked:
            raise  # the plugin's own: reported as any other bug
        raise IOFailure(f"attachment lock {exc.filename or ''}: {exc.strerror}") from None


def version_info(plugin: Plugin) -> dict[str, Any]:
    newest = max(plugin.versions, key=parse_version)
    return {"cniVersion": newest, "supportedVersions": list(plugin.versions)}


def dispatch(
    plugin: Plugin, environ: Mapping[str, str], stdin: bytes, host: Host | None = None
) -> tuple[int, bytes]:
    """One invocation: returns (exit code, stdout). Never raises. The verb runs with
    `host`, or with a default one made for this call and closed after it."""
    if host is None:
        with Host() as own:
            return _dispatch(plugin, environ, stdin, own)
    return _dispatch(plugin, environ, stdin, host)


def _dispatch(
    plugin: Plugin, environ: Mapping[str, str], stdin: bytes, host: Host
) -> tuple[int, bytes]:
    error_version = _error_version(stdin)
    try:
        request = request_from_env(environ, stdin, host)
        if request.command == "VERSION":
            return 0, _encode(version_info(plugin))
        error_version = request.cni_version
        result = _call_locked(plugin, request, environ)
        if result is None:
            return 0, b""
        return 0, _encode(result.to_json(request.cni_version))
    except CNIError as exc:
        log(
            f"{plugin.name} {environ.get('CNI_COMMAND', '?')} "
            f"{environ.get('CNI_CONTAINERID', '')}: error {exc.code}: {exc}"
        )
        return 1, _encode(exc.to_json(error_version))
    except Exception as exc:  # any bug becomes code 999 with one line, never a traceback
        import traceback

        log(f"{plugin.name}: unexpected error\n{traceback.format_exc()}")
        internal = InternalError(f"{type(exc).__name__}: {exc}".splitlines()[0])
        return 1, _encode(internal.to_json(error_version))


def plugin_main(plugin: Plugin, stdin: bytes | None = None) -> None:
    """main() of a plugin executable; `stdin` when the caller already read it."""
    environ = os.environ
    if not environ.get("CNI_COMMAND"):
        # As the reference: no command means a human ran it; say what it is.
        sys.stderr.write(
            f"{plugin.about}\nCNI protocol versions supported: {', '.join(plugin.versions)}\n"
        )
        sys.exit(0)
    if stdin is None:
        stdin = b"" if environ.get("CNI_COMMAND") == "VERSION" else sys.stdin.buffer.read()
    code, out = dispatch(plugin, environ, stdin)
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    sys.exit(code)


def _refuse_own_netns(request: Request) -> None:
    """The reference's check that CNI_NETNS is not the namespace the plugin runs in: the
    calling thread's, not the process's (/proc/self is the main thread's). The agent runs
    plugins on worker and helper threads, and any thread may step into a pod's namespace
    for a moment (to make its sockets, to write its sysctls) while another runs a plugin."""
    if request.netns_override.upper() in ("TRUE", "1") or not request.netns:
        return
    try:
        target = os.stat(request.netns)
        own = os.stat("/proc/thread-self/ns/net")
    except OSError:
        return  # a missing netns is the plugin's to report, with its own words
    if (target.st_dev, target.st_ino) == (own.st_dev, own.st_ino):
        raise InvalidNetNS("plugin's netns and netns from CNI_NETNS should not be the same")


def _error_version(stdin: bytes) -> str:
    try:
        obj = json.loads(stdin)
        version = obj.get("cniVersion") if isinstance(obj, dict) else None
        if isinstance(version, str) and version:
            parse_version(version)  # an unusable one is not the error's version either
            return version
        return CURRENT_VERSION
    except (ValueError, UnicodeDecodeError, RecursionError, CNIError):
        return CURRENT_VERSION


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, indent=1).encode() + b"\n"
