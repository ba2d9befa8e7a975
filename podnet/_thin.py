"""main() of the executables in a CNI bin dir.

The fast path hands the request to the node agent, which is already warm (pyroute2
imported, sockets open) and runs the whole chain in-process; this process then only
pays for the interpreter start. When no agent listens, the plugin runs here instead:
slower, never wrong. Imports of the rest of podnet happen only on that slow path.
"""

from __future__ import annotations

import os
import sys

from podnet._wire import WireError, connect, exchange

# An agent that accepted the request but did not answer: the request may have run, so
# running it again here could allocate twice. The runtime is told to retry instead.
_AGENT_LOST = (
    b'{"cniVersion": "1.1.0", "code": 11, "msg": "the podnet agent accepted the request '
    b'but did not answer", "details": "%s"}\n'
)


def main(plugin_type: str, agent_socket: str = "", timeout: float = 120.0) -> None:
    command = os.environ.get("CNI_COMMAND", "")
    stdin = sys.stdin.buffer.read() if command and command != "VERSION" else b""
    note = ""
    if agent_socket and command:
        try:
            sock = connect(agent_socket, timeout)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            note = f"agent at {agent_socket} unreachable ({reason}); {plugin_type} runs in-process"
        else:
            environ = {k: v for k, v in os.environ.items() if k.startswith(("CNI_", "PODNET_"))}
            environ["PATH"] = os.environ.get("PATH", "")
            try:
                code, out = exchange(sock, plugin_type, environ, stdin)
            except (OSError, WireError) as exc:
                code, out = 1, _AGENT_LOST % str(exc).replace('"', "'").encode()
            sys.stdout.buffer.write(out)
            sys.stdout.buffer.flush()
            sys.exit(code)
    from podnet.cni import log
    from podnet.plugins._exe import main as run_in_process

    if note:
        log(note)
    run_in_process(plugin_type, stdin)
