"""The compiled launcher (launcher.c): built from source on this machine, once per source,
compiler and flags (a cache keyed by their hash), and installed with each plugin's
settings appended to the binary (see launcher.c for the layout and why).

Delegation reads the same trailer to recognise a podnet executable, so this module is on
the in-process path: it imports nothing beyond `os` until something is built.
"""

from __future__ import annotations

import os

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.c")
# Settings, for tests and for machines whose compiler is not `cc` on PATH.
COMPILER_ENV = "PODNET_CC"
CACHE_ENV = "PODNET_LAUNCHER_CACHE"
TRAILER_MAGIC = b"podnetL1"
_TRAILER_SIZE = 4 + len(TRAILER_MAGIC)
_MAX_PAYLOAD = 64 * 1024  # as launcher.c
_WARNINGS = ["-Os", "-s", "-Wall", "-Wextra", "-Werror"]
_BUILD_TIMEOUT = 120.0


class LauncherUnavailable(Exception):
    """The launcher cannot be built here; the message says why, in one line."""


def cache_dir() -> str:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return configured
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "podnet")


def build_launcher() -> str:
    """The path of a launcher binary built from SOURCE (built now unless cached):
    static where the toolchain allows, else dynamic. Raises LauncherUnavailable."""
    import hashlib
    import subprocess
    import tempfile

    compiler = os.environ.get(COMPILER_ENV) or "cc"
    with open(SOURCE, "rb") as handle:
        source = handle.read()
    key = hashlib.sha256(b"\0".join([source, compiler.encode(), *map(str.encode, _WARNINGS)]))
    directory = cache_dir()
    path = os.path.join(directory, f"launcher-{key.hexdigest()[:16]}")
    if os.access(path, os.X_OK):
        return path
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise LauncherUnavailable(f"cannot create {directory}: {exc.strerror}") from None
    why = ""
    for linking in (["-static"], []):
        fd, temp = tempfile.mkstemp(prefix=".launcher-", dir=directory)
        os.close(fd)
        try:
            proc = subprocess.run(
                [compiler, *linking, *_WARNINGS, "-o", temp, SOURCE],
                capture_output=True,
                text=True,
                timeout=_BUILD_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            os.unlink(temp)
            reason = exc.strerror if isinstance(exc, OSError) else "timed out"
            raise LauncherUnavailable(f"no C compiler: {compiler}: {reason}") from None
        if proc.returncode == 0:
            os.chmod(temp, 0o755)
            os.replace(temp, path)  # concurrent installs each build and rename: same bytes
            return path
        os.unlink(temp)
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        why = lines[-1] if lines else f"exit code {proc.returncode}"
    raise LauncherUnavailable(f"{compiler} could not build {SOURCE}: {why}")


def fallback_argv(
    plugin_type: str, agent_socket: str, sys_path: list[str], bundle: str = ""
) -> list[str]:
    """The in-process path the launcher execs without an agent: this interpreter, isolated
    and without site processing, running podnet._thin.in_process (with its modules from
    `bundle`, see podnet._bundle); the launcher appends why it did not use the agent."""
    import sys

    # podnet's root (the first entry) before the standard library, the rest (its
    # dependencies) after it, where site would put them: a standard module is then found
    # without consulting site-packages first, whose listing alone costs each pod ~1
    # million instructions (the pod path imports nothing from there).
    root, *rest = sys_path
    code = (
        f"import sys; sys.path[:0] = {[root]!r}; sys.path += {rest!r}; "
        "from podnet._thin import in_process; "
        f"in_process({plugin_type!r}, {agent_socket!r}, sys.argv[1], {bundle!r})"
    )
    return [sys.executable, "-I", "-S", "-c", code]


def settings_trailer(plugin_type: str, agent_socket: str, argv: list[str]) -> bytes:
    fields = [plugin_type, agent_socket, *argv]
    if any("\0" in field for field in fields):
        raise ValueError("launcher settings cannot contain NUL")
    payload = b"".join(field.encode(errors="surrogateescape") + b"\0" for field in fields)
    if len(payload) > _MAX_PAYLOAD:
        raise ValueError("launcher settings too long")
    return payload + len(payload).to_bytes(4, "big") + TRAILER_MAGIC


def launcher_type_of(path: str) -> str | None:
    """The plugin type in the trailer of the launcher at `path`, or None when the file
    does not end in one (or cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size < _TRAILER_SIZE:
            return None
        trailer = os.pread(fd, _TRAILER_SIZE, size - _TRAILER_SIZE)
        if trailer[4:] != TRAILER_MAGIC:
            return None
        length = int.from_bytes(trailer[:4], "big")
        if length > min(_MAX_PAYLOAD, size - _TRAILER_SIZE):
            return None
        payload = os.pread(fd, length, size - _TRAILER_SIZE - length)
        return payload.split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


__all__ = [
    "CACHE_ENV",
    "COMPILER_ENV",
    "LauncherUnavailable",
    "build_launcher",
    "cache_dir",
    "fallback_argv",
    "launcher_type_of",
    "settings_trailer",
]
