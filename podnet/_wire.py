"""The wire between a thin CNI executable and the node agent.

This module is imported on every pod ADD/DEL by the executables in the CNI bin dir, so it
imports nothing but the interpreter's built-in `_socket` (the `socket` module alone pulls
in enum, selectors and collections: ~8 ms of CPU per pod) and no `__future__`.

Request:  b"PNC1" | u32 len | plugin type | u32 len | environ (NUL-separated K=V) | u32 len | stdin
Response: u32 exit code | u32 len | stdout
(u32: unsigned, big-endian)
"""

import _socket

MAGIC = b"PNC1"
MAX_FIELD = 16 * 1024 * 1024


class WireError(Exception):
    """The other side closed early or sent something that is not this protocol."""


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def _field(data: bytes) -> bytes:
    return _u32(len(data)) + data


def encode_request(plugin_type: str, environ: dict[str, str], stdin: bytes) -> bytes:
    env = b"\0".join(f"{k}={v}".encode(errors="surrogateescape") for k, v in environ.items())
    return MAGIC + _field(plugin_type.encode()) + _field(env) + _field(stdin)


def _recv_exact(sock: _socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise WireError("connection closed mid-message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _recv_u32(sock: _socket.socket) -> int:
    return int.from_bytes(_recv_exact(sock, 4), "big")


def _recv_field(sock: _socket.socket) -> bytes:
    size = _recv_u32(sock)
    if size > MAX_FIELD:
        raise WireError(f"field of {size} bytes is too large")
    return _recv_exact(sock, size)


def read_request(sock: _socket.socket) -> tuple[str, dict[str, str], bytes]:
    if _recv_exact(sock, 4) != MAGIC:
        raise WireError("not a podnet CNI request")
    plugin_type = _recv_field(sock).decode()
    environ = {}
    for pair in _recv_field(sock).split(b"\0"):
        if pair:
            key, _, value = pair.decode(errors="surrogateescape").partition("=")
            environ[key] = value
    return plugin_type, environ, _recv_field(sock)


def write_response(sock: _socket.socket, code: int, stdout: bytes) -> None:
    sock.sendall(_u32(code) + _field(stdout))


def connect(socket_path: str, timeout: float) -> _socket.socket:
    """A connection to the agent; OSError means no agent is listening there."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path)
    except BaseException:
        sock.close()
        raise
    return sock


def exchange(
    sock: _socket.socket, plugin_type: str, environ: dict[str, str], stdin: bytes
) -> tuple[int, bytes]:
    """Send one request on a connected socket and close it; returns (exit code, stdout)."""
    try:
        sock.sendall(encode_request(plugin_type, environ, stdin))
        sock.shutdown(_socket.SHUT_WR)
        code = _recv_u32(sock)
        return code, _recv_field(sock)
    finally:
        sock.close()
