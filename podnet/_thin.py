"""main() of the Python thin executables in a CNI bin dir (where no C compiler built the
launcher), and the in-process fallback of both.

The fast path hands the request to the node agent, which is already warm (pyroute2
imported, sockets open) and runs the whole chain in-process; this process then only
pays for the interpreter start. When no agent listens, the plugin runs here instead:
slower, never wrong. Imports of the rest of podnet happen only on that slow path.

Every import on the fast path is one the interpreter has built in (`posix`, `sys`,
`_socket`): with `-I -S` nothing else is loaded before the answer is printed. The
compiled launcher's fallback (`in_process`) talks to no agent: it imports no _wire.
"""

import gc
import posix
import sys

# An agent that accepted the request but did not answer: the request may have run, so
# running it again here could allocate twice. The runtime is told to retry instead.
_AGENT_LOST = (
    b'{"cniVersion": "1.1.0", "code": 11, "msg": "the podnet agent accepted the request '
    b'but did not answer", "details": "%s"}\n'
)
_FORWARDED = (b"CNI_", b"PODNET_")


def _forwarded_environ() -> dict[str, str]:
    """CNI_* and PODNET_* variables, and PATH (delegates and nft are looked up in it)."""
    environ = {
        key.decode(errors="surrogateescape"): value.decode(errors="surrogateescape")
        for key, value in posix.environ.items()
        if key.startswith(_FORWARDED)
    }
    environ["PATH"] = posix.environ.get(b"PATH", b"").decode(errors="surrogateescape")
    return environ


def _write_all(data: bytes) -> None:
    while data:
        data = data[posix.write(1, data) :]


def main(
    plugin_type: str, agent_socket: str = "", timeout: float = 120.0, bundle: str = ""
) -> None:
    command = posix.environ.get(b"CNI_COMMAND", b"").decode(errors="surrogateescape")
    stdin = sys.stdin.buffer.read() if command and command != "VERSION" else b""
    note = ""
    if agent_socket and command:
        from podnet._wire import WireError, connect, exchange

        try:
            sock = connect(agent_socket, timeout)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            note = f"agent at {agent_socket} unreachable ({reason}); {plugin_type} runs in-process"
        else:
            try:
                code, out = exchange(sock, plugin_type, _forwarded_environ(), stdin)
            except (OSError, WireError) as exc:
                code, out = 1, _AGENT_LOST % str(exc).replace('"', "'").encode()
            _write_all(out)
            # Nothing is left to flush or clean up: skip the interpreter's teardown.
            posix._exit(code)
    _run_here(plugin_type, note, stdin, bundle)


def in_process(plugin_type: str, agent_socket: str, reason: str, bundle: str = "") -> None:
    """main() of the compiled launcher's fallback (podnet/plugins/launcher.c): it did not
    reach the agent at `agent_socket` for `reason` ("" when it did not try), and left
    stdin unread. `bundle`: where install-cni wrote the plugin modules' code."""
    note = ""
    if reason:
        note = f"agent at {agent_socket} unreachable ({reason}); {plugin_type} runs in-process"
    _run_here(plugin_type, note, None, bundle)


def _run_here(plugin_type: str, note: str, stdin: bytes | None, bundle: str) -> None:
    # This process runs one plugin call and exits. The cyclic garbage collector would
    # walk the objects its imports make again and again (~4 million instructions, a
    # twentieth of an in-process ADD) for cycles that the exit frees anyway.
    gc.disable()
    if bundle:
        from podnet._bundle import use_bundle

        use_bundle(bundle)  # when it cannot be used, the modules are found the usual way
    from podnet.cni import log
    from podnet.plugins import run_in_process

    if note:
        log(note)
    run_in_process(plugin_type, stdin)
