"""Running another plugin as a process, the way libcni's pkg/invoke does: find its type in
CNI_PATH, exec it with the caller's environment and a changed CNI_COMMAND, and read its
result or its error back. Callers (the runtime, a delegating plugin) go through an `Exec`
they are handed, as libcni's callers do, so tests can hand in one that records the calls;
`RawExec` is the one that runs processes.

subprocess is imported when a process is run: a podnet plugin running in-process, which
delegates to other podnet plugins in-process, never needs it (~5 ms to import)."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Mapping, Sequence

from podnet import _json as json
from podnet.cni._errors import CNIError, DecodingFailure, InvalidConfig, IOFailure

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object  # Exec is only a type: nothing checks it at run time

DEFAULT_TIMEOUT = 60.0
_TEXT_BUSY_RETRIES = 5


class Exec(Protocol):
    """Finding and running plugins (libcni's invoke.Exec). `cni_env` holds only the
    variables of the call (CNI_*, and podnet's own PODNET_*); a real implementation adds
    the rest of the process environment."""

    def find_in_path(self, plugin_type: str, paths: Sequence[str]) -> str: ...

    def exec_plugin(self, executable: str, cni_env: Mapping[str, str], stdin: bytes) -> bytes:
        """The plugin's stdout; a failing plugin raises the CNIError it reported."""


class RawExec:
    """Runs plugin executables as processes (libcni's RawExec), killing any that outlives
    `timeout` seconds."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout

    def find_in_path(self, plugin_type: str, paths: Sequence[str]) -> str:
        return find_in_path(plugin_type, paths)

    def exec_plugin(self, executable: str, cni_env: Mapping[str, str], stdin: bytes) -> bytes:
        return exec_plugin(executable, plugin_environ(cni_env), stdin, timeout=self.timeout)


def plugin_environ(cni_env: Mapping[str, str]) -> dict[str, str]:
    """The environment for a plugin call: this process's, without its own CNI_* variables
    (they must never leak into a call; libcni drops them the same way), then `cni_env`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    environ.update(cni_env)
    return environ


def find_in_path(plugin_type: str, paths: Sequence[str]) -> str:
    """The executable for `plugin_type` in the first directory of `paths` that has it."""
    if not plugin_type:
        raise InvalidConfig("plugin type is missing")
    if "/" in plugin_type or plugin_type in (".", ".."):
        raise InvalidConfig(f"invalid plugin name: {plugin_type}")
    if not paths:
        raise InvalidConfig("no paths provided", "CNI_PATH is empty")
    for directory in paths:
        candidate = os.path.join(directory, plugin_type)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise InvalidConfig(f'failed to find plugin "{plugin_type}" in path {list(paths)}')


def exec_plugin(
    executable: str,
    environ: Mapping[str, str],
    stdin: bytes,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> bytes:
    """Run a plugin process and return its stdout; a failing plugin raises its CNIError."""
    import subprocess

    for attempt in range(_TEXT_BUSY_RETRIES):
        try:
            proc = subprocess.run(
                [executable],
                input=stdin,
                env=dict(environ),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            break
        except subprocess.TimeoutExpired:
            raise CNIError(
                f"plugin {os.path.basename(executable)} timed out after {timeout:g}s"
            ) from None
        except OSError as exc:
            # A binary being replaced while we exec it: libcni retries the same way.
            if exc.errno == errno.ETXTBSY and attempt + 1 < _TEXT_BUSY_RETRIES:
                time.sleep(1)
                continue
            raise IOFailure(f"failed to run plugin {executable}: {exc.strerror}") from None
    if proc.returncode != 0:
        raise plugin_error(proc.stdout, proc.stderr)
    return proc.stdout


def plugin_error(stdout: bytes, stderr: bytes) -> CNIError:
    """What a failed plugin said: its JSON error on stdout, else its stderr text."""
    if not stdout.strip():
        text = stderr.decode(errors="replace").strip()
        return CNIError(f"netplugin failed: {text!r}")
    try:
        return CNIError.from_json(json.loads(stdout))
    except (ValueError, RecursionError):
        text = stdout.decode(errors="replace").strip()
        return DecodingFailure(
            f"netplugin failed but error parsing its diagnostic message {text!r}"
        )


def decode_result(stdout: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(stdout)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DecodingFailure(f"failed to decode plugin result: {exc}") from None
    if not isinstance(obj, dict):
        raise DecodingFailure("failed to decode plugin result: not a JSON object")
    return obj
