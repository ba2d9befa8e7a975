"""The wire between a thin CNI executable and the node agent.

This module is imported on every pod ADD/DEL by the executables in the CNI bin dir, so it
imports nothing but the interpreter's built-in `_socket` (the `socket` module alone pulls
in enum, selectors and collections: ~8 ms of CPU per pod) and no `__future__`.

Request:  b"PNC1" | u32 len | plugin type | u32 len | environ (NUL-separated K=V) | u32 len | stdin
Response: u32 exit code | u32 len | stdout
(u32: unsigned, big-endian)

The agent reads a request with `RequestParser`, which is fed whatever bytes arrived and
says how many it still needs, so one request can be read partly by one thread and
finished by another (see podnet.agent._cni_server) and no read ever waits for more bytes
than the request declared.
"""

import _socket

MAGIC = b"PNC1"
# Per field. A pod's config is a few KiB; 2 MiB leaves room for a 1 MiB stdin (a large
# prevResult or runtimeConfig) while one request cannot make the agent hold much memory.
MAX_FIELD = 2 * 1024 * 1024
MAX_ANSWER = 16 * 1024 * 1024  # the agent's stdout, as the launcher also limits it
# CNI error codes the agent answers a refused request with (spec: 4 invalid environment
# variables, 6 failed to decode content).
CODE_INVALID_ENVIRONMENT = 4
CODE_DECODING_FAILURE = 6
_FIELD_NAMES = ("plugin type", "environment", "stdin")
_FIELD_CODES = (CODE_INVALID_ENVIRONMENT, CODE_INVALID_ENVIRONMENT, CODE_DECODING_FAILURE)


class WireError(Exception):
    """The other side closed early or sent something that is not this protocol."""


class RequestRefused(WireError):
    """A request in this protocol that the agent will not run: answered with CNI error
    `code` (4 or 6), not just closed."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def _field(data: bytes) -> bytes:
    return _u32(len(data)) + data


def encode_request(plugin_type: str, environ: dict[str, str], stdin: bytes) -> bytes:
    env = b"\0".join(f"{k}={v}".encode(errors="surrogateescape") for k, v in environ.items())
    return MAGIC + _field(plugin_type.encode()) + _field(env) + _field(stdin)


class RequestParser:
    """One request, fed in pieces. `needed` is how many more bytes the current part
    wants (0 when the request is whole); `feed` raises WireError for bytes that are not
    this protocol and RequestRefused for a field over `max_field` or a plugin type that
    is not UTF-8."""

    def __init__(self, max_field: int = MAX_FIELD) -> None:
        self._max_field = max_field
        self._buffer = bytearray()
        self._want = len(MAGIC)
        self._step = 0  # 0 magic, then per field: 2k+1 its length, 2k+2 its bytes
        self._fields: list[bytes] = []

    @property
    def needed(self) -> int:
        return self._want - len(self._buffer)

    @property
    def started(self) -> bool:
        return self._step != 0 or bool(self._buffer)

    @property
    def speaks_protocol(self) -> bool:
        """The client sent this protocol's magic: it expects an answer in it."""
        return self._step != 0

    @property
    def complete(self) -> bool:
        return self._step == -1

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if not self.needed:
                raise WireError("bytes after the end of the request")
            take = min(self.needed, len(view))
            self._buffer += view[:take]
            view = view[take:]
            if not self.needed:
                self._advance()

    def _advance(self) -> None:
        part = bytes(self._buffer)
        self._buffer.clear()
        if self._step == 0:
            if part != MAGIC:
                raise WireError("not a podnet CNI request")
            self._step, self._want = 1, 4
        elif self._step % 2:  # a field's length
            index = self._step // 2
            size = int.from_bytes(part, "big")
            if size > self._max_field:
                raise RequestRefused(
                    _FIELD_CODES[index],
                    f"the request's {_FIELD_NAMES[index]} is {size} bytes, more than the "
                    f"agent's limit of {self._max_field}",
                )
            self._step, self._want = self._step + 1, size
        else:
            self._fields.append(part)
            if len(self._fields) == len(_FIELD_NAMES):
                self._step, self._want = -1, 0
            else:
                self._step, self._want = self._step + 1, 4
        if self._step > 0 and self._step % 2 == 0 and self._want == 0:
            self._advance()  # an empty field is whole as soon as its length is read

    def request(self) -> tuple[str, dict[str, str], bytes]:
        """The request once whole (`needed` is 0): plugin type, environment, stdin."""
        if not self.complete:
            raise WireError("the request is not complete")
        raw_type, raw_env, stdin = self._fields
        try:
            plugin_type = raw_type.decode()
        except UnicodeDecodeError:
            raise RequestRefused(
                CODE_INVALID_ENVIRONMENT, f"the plugin type {raw_type[:64]!r} is not UTF-8"
            ) from None
        environ = {}
        for pair in raw_env.split(b"\0"):
            if pair:
                key, _, value = pair.decode(errors="surrogateescape").partition("=")
                environ[key] = value
        return plugin_type, environ, stdin


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


def encode_response(code: int, stdout: bytes) -> bytes:
    return _u32(code) + _field(stdout)


def write_response(sock: _socket.socket, code: int, stdout: bytes) -> None:
    sock.sendall(encode_response(code, stdout))


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
        sent_error = None
        try:
            sock.sendall(encode_request(plugin_type, environ, stdin))
            sock.shutdown(_socket.SHUT_WR)
        except OSError as exc:
            # The agent may have refused the request before reading all of it (a field
            # over its limit) and closed: its answer is still there to read.
            sent_error = exc
        try:
            code = _recv_u32(sock)
        except (OSError, WireError):
            if sent_error is not None:
                raise sent_error from None
            raise
        size = _recv_u32(sock)
        if size > MAX_ANSWER:
            raise WireError(f"field of {size} bytes is too large")
        return code, _recv_exact(sock, size)
    finally:
        sock.close()
