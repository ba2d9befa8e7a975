"""etcd v3 through its JSON gateway (`/v3/...`), with httpx.

Why not gRPC: the gRPC client's threads make a forked child crash (pyroute2 forks to
enter network namespaces), and the gateway is the same v3 API. Gateway facts this code
relies on: keys and values are base64; int64 fields are JSON strings; fields holding
their default value (0, false, PUT) are left out; a watch is a stream of JSON lines.

Failover: requests go to the endpoint that answered last; when it cannot be reached the
next one is tried. A request that may have been applied (the connection broke after it
was sent) is retried only if it is a read or otherwise safe to repeat; a write raises
StoreUnavailable instead, and the caller rereads (CAS makes that safe). A watch resumes
from the revision after the last event it delivered, on whichever endpoint answers.

A watch asks for progress notifications (an empty message carrying the cluster's
revision, sent by etcd every `--experimental-watch-progress-notify-interval`): they move
its resume point forward while its keys are quiet, and they make silence meaningful. A
stream that says nothing for `watch_read_deadline` is presumed dead (a half-open
connection, a member that hangs) and resumed elsewhere; on an etcd that keeps the
10-minute default interval that costs one reconnect per deadline while nothing changes.

Proxies: none, unless one is configured (`proxy=`, `?proxy=` in the URL); HTTP(S)_PROXY
in the environment is ignored, as a store client that quietly routed through whatever
proxy the environment names would be a way around TLS pinning and a surprise in a daemon.

Authentication: beside TLS client certificates, a user name and password (etcd's
`/v3/auth/authenticate`), sent as the token etcd hands back. An expired or stale token
(etcd's "invalid auth token", "revision of auth store is old") is renewed once and the
request repeated: etcd refused it before applying anything.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from podnet.store._base import NO_LEASE, EventType, KeyValue, Listing, WatchEvent, prefix_end
from podnet.store._errors import (
    AuthFailed,
    Compacted,
    ExceptionMap,
    LeaseNotFound,
    StoreCorrupt,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    map_exceptions,
)
from podnet.store._watch import OpenWatches, ThreadedWatch

HTTPX_ERRORS: ExceptionMap = {
    httpx.HTTPError: StoreError,
    httpx.TransportError: StoreUnavailable,
    httpx.TimeoutException: StoreTimeout,
    httpx.ProtocolError: StoreUnavailable,
    httpx.UnsupportedProtocol: StoreError,
    httpx.ProxyError: StoreUnavailable,
    httpx.DecodingError: StoreCorrupt,
    httpx.TooManyRedirects: StoreCorrupt,
    httpx.HTTPStatusError: StoreError,
    httpx.InvalidURL: StoreError,
    httpx.CookieConflict: StoreError,
    httpx.StreamError: StoreError,
    ssl.SSLError: StoreUnavailable,
    OSError: StoreUnavailable,
    json.JSONDecodeError: StoreCorrupt,
    UnicodeDecodeError: StoreCorrupt,
}

# Errors raised before the request left: retrying on another endpoint cannot duplicate it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

# gRPC status codes the gateway puts in its error bodies.
_GRPC_PERMISSION_DENIED = 7
_GRPC_FAILED_PRECONDITION = 9
_GRPC_OUT_OF_RANGE = 11
_GRPC_UNAUTHENTICATED = 16
_GRPC_UNAVAILABLE = 14
_GRPC_DEADLINE_EXCEEDED = 4
_RETRYABLE_CODES = {_GRPC_UNAVAILABLE, _GRPC_DEADLINE_EXCEEDED}

REQUEST_TIMEOUT = 5.0
CONNECT_TIMEOUT = 1.0
# How long a read-only request keeps cycling through the endpoints (covers an election).
RETRY_DEADLINE = 5.0
WATCH_BACKOFF_MAX = 1.0
# No byte on a watch stream for this long: the connection is presumed dead and resumed.
# Several times the progress interval podnet's own etcds use (LocalEtcd, the lab).
WATCH_READ_DEADLINE = 20.0


@dataclass(frozen=True)
class Credentials:
    """An etcd user (etcd's `--user name:password`), for clusters with auth enabled."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class TLSConfig:
    """Files for `etcds://`: the CA that signed the servers, and optionally our client
    certificate and key (for etcd's --client-cert-auth)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def context(self) -> ssl.SSLContext:
        with map_exceptions({OSError: StoreError, ssl.SSLError: StoreError}, "etcd TLS files"):
            ctx = ssl.create_default_context(cafile=self.ca)
            if self.cert:
                ctx.load_cert_chain(self.cert, self.key)
        return ctx


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _kv_from_json(kv: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=_unb64(kv.get("key")).decode(),
        value=_unb64(kv.get("value")),
        create_revision=_int(kv.get("create_revision")),
        mod_revision=_int(kv.get("mod_revision")),
        lease=_int(kv.get("lease")),
    )


def _range_body(prefix: str) -> dict[str, str]:
    start = prefix.encode()
    end = prefix_end(start)
    # etcd reads range_end "\0" as "every key >= key", and wants a non-empty key.
    return {"key": _b64(start or b"\0"), "range_end": _b64(end if end is not None else b"\0")}


class EtcdError(StoreError):
    """An error body from etcd that maps to no more specific store error."""


class EtcdStore:
    """The Store protocol on an etcd v3 cluster (see the module docstring)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        tls: TLSConfig | None = None,
        timeout: float = REQUEST_TIMEOUT,
        credentials: Credentials | None = None,
        proxy: str | None = None,
        watch_read_deadline: float = WATCH_READ_DEADLINE,
    ) -> None:
        if not endpoints:
            raise StoreError("etcd: no endpoints given")
        self.endpoints = list(endpoints)
        self._preferred = 0
        self._lock = threading.Lock()
        self._credentials = credentials
        self._token: str | None = None
        self._token_lock = threading.Lock()
        verify: ssl.SSLContext | bool = tls.context() if tls else True
        with map_exceptions(HTTPX_ERRORS, "etcd proxy"):
            self._client = httpx.Client(
                verify=verify,
                timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
                proxy=proxy,
                trust_env=False,
            )
            self._watch_client = httpx.Client(
                verify=verify,
                timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT, read=watch_read_deadline),
                proxy=proxy,
                trust_env=False,
            )
        self._watches = OpenWatches()

    # -- transport ---------------------------------------------------------------------
    def _endpoint_order(self) -> list[int]:
        with self._lock:
            first = self._preferred
        n = len(self.endpoints)
        return [(first + i) % n for i in range(n)]

    def _prefer(self, index: int) -> None:
        with self._lock:
            self._preferred = index

    def _call(self, path: str, body: dict[str, Any], *, safe_to_retry: bool) -> dict[str, Any]:
        """POST to the first endpoint that answers, with our token; a rejected token is
        renewed once (etcd refused the request without applying it)."""
        headers = self._auth_headers()
        try:
            return self._call_any(path, body, headers, safe_to_retry=safe_to_retry)
        except _TokenRejected:
            self._forget_token(headers)
        return self._call_any(path, body, self._auth_headers(), safe_to_retry=safe_to_retry)

    def _call_any(
        self, path: str, body: dict[str, Any], headers: dict[str, str], *, safe_to_retry: bool
    ) -> dict[str, Any]:
        """POST to the first endpoint that answers; see the module docstring for retries."""
        deadline = time.monotonic() + RETRY_DEADLINE
        last_error: StoreError | None = None
        while True:
            for index in self._endpoint_order():
                try:
                    data = self._post(self.endpoints[index], path, body, headers)
                except StoreUnavailable as exc:
                    last_error = exc
                    sent = not isinstance(exc.__cause__, _NOT_SENT)
                    if sent and not safe_to_retry:
                        raise
                    continue
                self._prefer(index)
                return data
            if not safe_to_retry or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        raise StoreUnavailable(f"etcd: no endpoint answered ({last_error})")

    def _post(
        self, endpoint: str, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        try:
            with map_exceptions(HTTPX_ERRORS, f"etcd {endpoint}"):
                response = self._client.post(endpoint + path, json=body, headers=headers)
                # Streaming RPCs (lease keepalive) answer a line per message; we send one.
                text = response.text.strip().splitlines()
                data = json.loads(text[0]) if text else {}
        except StoreUnavailable as exc:
            refused = _tls_refusal(exc)
            if refused is not None:
                # A certificate problem does not go away by retrying: report it as is.
                raise StoreError(f"etcd {endpoint}: TLS: {refused}") from exc
            raise
        if not isinstance(data, dict):
            raise StoreCorrupt(f"etcd {endpoint}: unexpected answer {data!r}")
        if "error" in data:
            _raise_for_error(endpoint, data)
        if response.status_code != 200:
            raise EtcdError(f"etcd {endpoint}: HTTP {response.status_code}")
        result = data.get("result", data)
        if not isinstance(result, dict):
            raise StoreCorrupt(f"etcd {endpoint}: unexpected answer {data!r}")
        return result

    # -- authentication ----------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        """The header carrying our token (asked for on first use); none without credentials."""
        if self._credentials is None:
            return {}
        with self._token_lock:
            if self._token is None:
                self._token = self._authenticate(self._credentials)
            return {"Authorization": self._token} if self._token else {}

    def _authenticate(self, credentials: Credentials) -> str:
        body = {"name": credentials.username, "password": credentials.password}
        try:
            data = self._call_any("/v3/auth/authenticate", body, {}, safe_to_retry=True)
        except _AuthNotEnabled:
            return ""  # a cluster without auth serves everyone: no token to send
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise StoreCorrupt(f"etcd: authenticate answered without a token: {data!r}")
        return token

    def _forget_token(self, headers: dict[str, str]) -> None:
        """Drop the token a refused request carried, unless another thread renewed it."""
        with self._token_lock:
            if self._token and headers.get("Authorization") == self._token:
                self._token = None

    # -- the Store protocol ------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        data = self._call("/v3/kv/range", {"key": _b64(key.encode())}, safe_to_retry=True)
        kvs = data.get("kvs") or []
        return _kv_from_json(kvs[0]) if kvs else None

    def list(self, prefix: str) -> Listing:
        data = self._call("/v3/kv/range", _range_body(prefix), safe_to_retry=True)
        return Listing(
            items=[_kv_from_json(kv) for kv in data.get("kvs") or []],
            revision=_int(data.get("header", {}).get("revision")),
        )

    def _put_if(
        self, key: str, value: bytes, compare: dict[str, Any], lease: int
    ) -> tuple[bool, int]:
        put: dict[str, Any] = {"key": _b64(key.encode()), "value": _b64(value)}
        if lease != NO_LEASE:
            put["lease"] = str(lease)
        data = self._call(
            "/v3/kv/txn",
            {"compare": [compare], "success": [{"request_put": put}]},
            safe_to_retry=False,
        )
        return bool(data.get("succeeded")), _int(data.get("header", {}).get("revision"))

    def create(self, key: str, value: bytes, *, lease: int = NO_LEASE) -> KeyValue | None:
        compare = {"key": _b64(key.encode()), "target": "CREATE", "create_revision": "0"}
        ok, rev = self._put_if(key, value, compare, lease)
        return KeyValue(key, value, rev, rev, lease) if ok else None

    def update(
        self, key: str, value: bytes, *, revision: int, lease: int = NO_LEASE
    ) -> KeyValue | None:
        # The txn answer does not carry the create revision; ask for it in the same txn.
        compare = {"key": _b64(key.encode()), "target": "MOD", "mod_revision": str(revision)}
        put: dict[str, Any] = {"key": _b64(key.encode()), "value": _b64(value)}
        if lease != NO_LEASE:
            put["lease"] = str(lease)
        data = self._call(
            "/v3/kv/txn",
            {
                "compare": [compare],
                "success": [
                    {"request_put": put},
                    {"request_range": {"key": _b64(key.encode())}},
                ],
            },
            safe_to_retry=False,
        )
        if not data.get("succeeded"):
            return None
        responses = data.get("responses") or []
        kvs = responses[1].get("response_range", {}).get("kvs") if len(responses) > 1 else None
        if not kvs:
            raise StoreCorrupt(f"etcd: txn on {key} answered without the key")
        return _kv_from_json(kvs[0])

    def delete(self, key: str, *, revision: int | None = None) -> bool:
        raw = _b64(key.encode())
        if revision is None:
            data = self._call("/v3/kv/deleterange", {"key": raw}, safe_to_retry=False)
            return _int(data.get("deleted")) > 0
        data = self._call(
            "/v3/kv/txn",
            {
                "compare": [{"key": raw, "target": "MOD", "mod_revision": str(revision)}],
                "success": [{"request_delete_range": {"key": raw}}],
            },
            safe_to_retry=False,
        )
        if not data.get("succeeded"):
            return False
        responses = data.get("responses") or [{}]
        return _int(responses[0].get("response_delete_range", {}).get("deleted")) > 0

    def grant(self, ttl: int) -> int:
        data = self._call("/v3/lease/grant", {"TTL": str(ttl)}, safe_to_retry=False)
        if data.get("error"):
            raise EtcdError(f"etcd: lease grant: {data['error']}")
        return _int(data.get("ID"))

    def keepalive(self, lease: int) -> int:
        data = self._call("/v3/lease/keepalive", {"ID": str(lease)}, safe_to_retry=True)
        ttl = _int(data.get("TTL"))
        if ttl <= 0:
            raise LeaseNotFound(f"lease {lease:x} not found")
        return ttl

    def revoke(self, lease: int) -> None:
        try:
            self._call("/v3/lease/revoke", {"ID": str(lease)}, safe_to_retry=True)
        except LeaseNotFound:
            pass  # already gone (expired, or our earlier attempt went through)

    def watch(self, prefix: str, *, from_revision: int | None = None) -> ThreadedWatch:
        if from_revision is None:
            body = {**_range_body(prefix), "count_only": True}
            head = self._call("/v3/kv/range", body, safe_to_retry=True)
            from_revision = _int(head.get("header", {}).get("revision")) + 1
        start = from_revision
        watch = ThreadedWatch(lambda w: self._pump(w, prefix, start), name=f"etcd-watch {prefix}")
        return self._watches.track(watch)

    def close(self) -> None:
        self._watches.close_all()
        self._client.close()
        self._watch_client.close()

    def __enter__(self) -> EtcdStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- watch pump --------------------------------------------------------------------
    def _pump(self, watch: ThreadedWatch, prefix: str, start: int) -> None:
        cursor = _Cursor(prefix, start)
        backoff = 0.05
        while not watch.stopped:
            for index in self._endpoint_order():
                if watch.stopped:
                    return
                try:
                    headers = self._auth_headers()
                except StoreUnavailable:
                    continue
                try:
                    self._stream(watch, self.endpoints[index], cursor, headers)
                    backoff = 0.05  # the stream worked for a while: reconnect right away
                except _TokenRejected:
                    self._forget_token(headers)  # expired: the next attempt asks for another
                except StoreUnavailable:
                    continue  # that member is gone, going or silent: try the next one
            if watch.sleep(backoff):
                return
            backoff = min(backoff * 2, WATCH_BACKOFF_MAX)

    def _stream(
        self, watch: ThreadedWatch, endpoint: str, cursor: _Cursor, headers: dict[str, str]
    ) -> None:
        """Follow one watch stream until it breaks or falls silent, advancing the cursor
        past every event handed over and every progress notification, so the next stream
        resumes right after what this one covered."""
        request = {
            **_range_body(cursor.prefix),
            "start_revision": str(cursor.next_revision),
            "progress_notify": True,
        }
        try:
            with (
                map_exceptions(HTTPX_ERRORS, f"etcd {endpoint} watch"),
                self._watch_client.stream(
                    "POST",
                    endpoint + "/v3/watch",
                    json={"create_request": request},
                    headers=headers,
                ) as response,
            ):
                watch.set_interrupter(_socket_shutdown(response))
                if response.status_code != 200:
                    raise StoreUnavailable(f"etcd {endpoint} watch: HTTP {response.status_code}")
                for line in response.iter_lines():
                    if watch.stopped:
                        break
                    if line.strip():
                        message = json.loads(line)
                        events = _watch_events(endpoint, message, cursor)
                        if events:
                            watch.emit(events)
                            cursor.next_revision = events[-1].revision + 1
                        else:
                            cursor.next_revision = max(
                                cursor.next_revision, _progress_revision(message) + 1
                            )
        finally:
            watch.set_interrupter(None)


@dataclass
class _Cursor:
    prefix: str
    next_revision: int


def _watch_events(endpoint: str, message: dict[str, Any], cursor: _Cursor) -> list[WatchEvent]:
    """The events in one watch stream message; raises for cancellations and errors."""
    if "error" in message:
        error = message["error"]
        _raise_for_error(endpoint, error if isinstance(error, dict) else message)
    result = message.get("result") or {}
    if result.get("canceled"):
        compact = _int(result.get("compact_revision"))
        if compact:
            raise Compacted(
                f"etcd: revision {cursor.next_revision} has been compacted "
                f"(oldest kept: {compact})",
                compact_revision=compact - 1,
            )
        reason = str(result.get("cancel_reason") or "")
        text = f"etcd {endpoint}: watch canceled: {reason}"
        auth_error = _auth_error(text, reason, code=0)
        if auth_error is not None:
            raise auth_error
        raise StoreUnavailable(text)
    events = []
    for event in result.get("events") or []:
        kv = _kv_from_json(event.get("kv") or {})
        kind: EventType = "DELETE" if event.get("type") == "DELETE" else "PUT"
        value = b"" if kind == "DELETE" else kv.value
        events.append(WatchEvent(kind, kv.key, value, kv.mod_revision))
    return events


def _progress_revision(message: dict[str, Any]) -> int:
    """The revision a progress notification vouches for (every event up to it was sent),
    or 0 when the message is not one (the `created` answer, a cancellation)."""
    result = message.get("result")
    if not isinstance(result, dict) or result.get("created") or result.get("canceled"):
        return 0
    if result.get("events"):
        return 0
    header = result.get("header")
    return _int(header.get("revision")) if isinstance(header, dict) else 0


def _socket_shutdown(response: httpx.Response) -> Callable[[], None] | None:
    """A callable that breaks a blocking read on the response's socket from another thread
    (closing the socket does not wake a thread blocked in recv; shutdown does)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if not isinstance(sock, socket.socket):
        return None
    return lambda: sock.shutdown(socket.SHUT_RDWR)


def _tls_refusal(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind `exc` when the handshake was refused (bad or missing
    certificate), as opposed to a connection that merely dropped."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) and not isinstance(
            seen, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError
        ):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _raise_for_error(endpoint: str, data: dict[str, Any]) -> None:
    message = str(data.get("message") or data.get("error") or data)
    code = _int(data.get("code"))
    text = f"etcd {endpoint}: {message}"
    auth_error = _auth_error(text, message, code)
    if auth_error is not None:
        raise auth_error
    if "lease not found" in message:
        raise LeaseNotFound(text)
    if code == _GRPC_OUT_OF_RANGE and "compacted" in message:
        raise Compacted(text, compact_revision=0)
    if code == _GRPC_DEADLINE_EXCEEDED:
        raise StoreTimeout(text)
    if code in _RETRYABLE_CODES:
        raise StoreUnavailable(text)
    raise EtcdError(text)


class _TokenRejected(AuthFailed):
    """Our token expired or went stale: ask for a new one and repeat the request."""


class _AuthNotEnabled(StoreError):
    """Credentials were given to a cluster that has auth disabled."""


def _auth_error(text: str, message: str, code: int) -> StoreError | None:
    """The store error for an authentication refusal in `message`, or None for others."""
    if code == _GRPC_UNAUTHENTICATED or "invalid auth token" in message:
        return _TokenRejected(text)
    if "revision of auth store is old" in message:
        return _TokenRejected(text)  # the user changed since the token was issued
    if "authentication is not enabled" in message and code in (0, _GRPC_FAILED_PRECONDITION):
        return _AuthNotEnabled(text)
    if "user name is empty" in message:
        return AuthFailed(f"{text} (the cluster has auth enabled: give a user in the URL)")
    if "authentication failed" in message:
        return AuthFailed(text)
    if code == _GRPC_PERMISSION_DENIED or "permission denied" in message:
        return AuthFailed(text)
    return None
