"""The wire between a thin CNI executable and the node agent.

This module is imported on every pod ADD/DEL by the executables in the CNI bin dir, so it
uses only what the interpreter has already loaded (os, socket, struct) and nothing from
the rest of podnet.

Request:  b"PNC1" | u32 len | plugin type | u32 len | environ (NUL-separated K=V) | u32 len | stdin
Response: u32 exit code | u32 len | stdout
"""

from __future__ import annotations

import socket
import struct

MAGIC = b"PNC1"
_U32 = struct.Struct("!I")
MAX_FIELD = 16 * 1024 * 1024


class WireError(Exception):
    """The other side closed early or sent something that is not this protocol."""


def _field(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def encode_request(plugin_type: str, environ: dict[str, str], stdin: bytes) -> bytes:
    env = b"\0".join(f"{k}={v}".encode() for k, v in environ.items())
    return MAGIC + _field(plugin_type.encode()) + _field(env) + _field(stdin)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise WireError("connection closed mid-message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _recv_field(sock: socket.socket) -> bytes:
    (size,) = _U32.unpack(_recv_exact(sock, 4))
    if size > MAX_FIELD:
        raise WireError(f"field of {size} bytes is too large")
    return _recv_exact(sock, size)


def read_request(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    if _recv_exact(sock, 4) != MAGIC:
        raise WireError("not a podnet CNI request")
    plugin_type = _recv_field(sock).decode()
    environ = {}
    for pair in _recv_field(sock).split(b"\0"):
        if pair:
            key, _, value = pair.decode(errors="surrogateescape").partition("=")
            environ[key] = value
    return plugin_type, environ, _recv_field(sock)


def write_response(sock: socket.socket, code: int, stdout: bytes) -> None:
    sock.sendall(_U32.pack(code) + _field(stdout))


def connect(socket_path: str, timeout: float) -> socket.socket:
    """A connection to the agent; OSError means no agent is listening there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path)
    except BaseException:
        sock.close()
        raise
    return sock


def exchange(
    sock: socket.socket, plugin_type: str, environ: dict[str, str], stdin: bytes
) -> tuple[int, bytes]:
    """Send one request on a connected socket; returns (exit code, stdout)."""
    with sock:
        sock.sendall(encode_request(plugin_type, environ, stdin))
        sock.shutdown(socket.SHUT_WR)
        (code,) = _U32.unpack(_recv_exact(sock, 4))
        return code, _recv_field(sock)
