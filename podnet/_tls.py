"""A workaround for CPython 3.11's ssl module leaking a socket.

`SSLContext.wrap_socket` hands the socket's descriptor to a new SSLSocket, then checks
that the socket is connected: getpeername(), and when that says "not connected", a
non-blocking recv(1). When the peer has reset the connection in between (an API server
going away while a client connects), that recv raises ECONNRESET outside the block that
closes the new SSLSocket on failure: the exception leaves, the descriptor stays open
until the garbage collector finds the socket in the exception's traceback (which a log
record can keep for long) and reports it unclosed.

`ClosingSSLSocket` closes what `_create` made when it fails; `install()` makes it the
socket class of every SSL context of the process (`SSLContext.sslsocket_class`, the
documented way to return a custom SSLSocket). Harmless where CPython closes it itself."""

from __future__ import annotations

import ssl
from typing import Any

_CREATE = ssl.SSLSocket._create.__func__.__code__  # type: ignore[attr-defined]


class ClosingSSLSocket(ssl.SSLSocket):
    @classmethod
    def _create(cls, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        try:
            made: ssl.SSLSocket = super()._create(*args, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            _close_half_made(exc)
            raise
        return made


def _close_half_made(exc: BaseException) -> None:
    """Close the SSLSocket that the failed `_create` frame in `exc`'s traceback made."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code is _CREATE:
            made = frame.f_locals.get("self")
            if isinstance(made, ssl.SSLSocket):
                made.close()
        tb = tb.tb_next


def install() -> None:
    ssl.SSLContext.sslsocket_class = ClosingSSLSocket


__all__ = ["ClosingSSLSocket", "install"]
