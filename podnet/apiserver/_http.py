"""The HTTPS front: routing, authentication, authorization, and the wire formats.

Server choice: the standard library's ThreadingHTTPServer, with TLS done per connection
in the connection's own thread (so a slow handshake never holds up `accept`). Why not an
asyncio server: every request ends in the store, whose sqlite backend is synchronous and
serialised by one lock, so an event loop would hand each request to a thread anyway; and
a watch stream here is a thread waiting on the watch cache's condition variable, which
costs ~one idle thread per `kubectl get -w` (100 watchers: 100 parked threads, no
polling). A list of 5,000 nodes is one store read and one json.dumps; the HTTP layer
adds little to that. HTTP/1.1 keep-alive is on, so a client reuses its TLS connection.
"""

from __future__ import annotations

import functools
import json
import logging
import select
import socket
import ssl
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from podnet._tls import install as install_tls_workaround
from podnet.apiserver import _discovery as discovery
from podnet.apiserver import _openapi as openapi
from podnet.apiserver._auth import Identity, Request, admit, authorize
from podnet.apiserver._fields import FieldCheck, loads
from podnet.apiserver._protobuf import PROTOBUF, decode_protobuf
from podnet.apiserver._registry import Admission, Selection, decode_value
from podnet.apiserver._resources import Object, Resource, find
from podnet.apiserver._selectors import parse_field_selector, parse_label_selector
from podnet.apiserver._status import (
    APIError,
    BadRequest,
    Gone,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    UnsupportedMediaType,
)
from podnet.apiserver._table import table, wants_table
from podnet.apiserver._watch import Change
from podnet.store import KeyValue, Listing, StoreError, StoreUnavailable

if TYPE_CHECKING:
    from podnet.apiserver._server import APIServer

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request size limit
HANDSHAKE_SECONDS = 10.0
IDLE_SECONDS = 300.0
BOOKMARK_SECONDS = 5.0
WATCH_WAIT_SECONDS = 1.0
_JSON_TYPES = ("application/json", "")
WRITE_BODIES = ("create", "update", "delete", "deletecollection")
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})


# The same for the server's accepted connections (see podnet._tls).
install_tls_workaround()


class APIHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        api: APIServer,
        context: ssl.SSLContext,
        *,
        sock: socket.socket | None = None,
    ) -> None:
        self.api = api
        self.context = context
        super().__init__(address, APIHandler, bind_and_activate=sock is None)
        if sock is not None:
            self.socket.close()
            self.socket = sock
            self.server_address = sock.getsockname()[:2]

    def bound(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return (host.decode() if isinstance(host, bytes) else str(host)), int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs in the connection's thread: the TLS handshake happens here, not in accept.
        request.settimeout(HANDSHAKE_SECONDS)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            request.close()
            return
        try:
            APIHandler(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class APIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "podnet-apiserver"
    sys_version = ""
    timeout = IDLE_SECONDS
    server: APIHTTPServer
    # An answer's headers and body leave together, in one TLS record and one send:
    # http.server flushes after every request, and a watch stream after every event.
    # (Unbuffered, they were two writes, each its own record, syscall and GIL hand-off.)
    wbufsize = 64 * 1024
    # A watch event's chunk, or a body past the buffer, must not wait for the client's
    # delayed ACK of the previous write (40 ms on Linux) as it would with Nagle on.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # -- plumbing ----------------------------------------------------------------------
    def _serve(self, method: str) -> None:
        started = time.monotonic()
        self._warnings: list[str] = []  # Warning headers of the answer (fieldValidation=Warn)
        try:
            body = self._read_body()
            self._route(method, body)
        except APIError as exc:
            self._send_json(exc.code, exc.status())
        except StoreUnavailable as exc:
            error = APIError(f"the store is unavailable: {exc}", reason="ServiceUnavailable")
            error.code = 503
            self._send_json(503, error.status())
        except StoreError as exc:
            self._send_json(500, APIError(f"store error: {exc}").status())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # a bug: log it, answer a Status, keep serving
            log.exception("internal error serving %s %s", method, self.path)
            self._send_json(500, APIError(f"internal error: {type(exc).__name__}").status())
        finally:
            log.debug("%s %s in %.1f ms", method, self.path, (time.monotonic() - started) * 1000)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise BadRequest("chunked request bodies are not supported; send Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            self.close_connection = True
            raise BadRequest("invalid Content-Length") from exc
        if length > MAX_BODY:
            self.close_connection = True
            error = APIError("Request entity too large", reason="RequestEntityTooLarge")
            error.code = 413
            raise error
        return self.rfile.read(length) if length else b""

    def _send_json(self, code: int, body: Any) -> None:
        self._send_bytes(code, json.dumps(body, separators=(",", ":")).encode())

    def _send_bytes(self, code: int, data: bytes, content_type: str = "application/json") -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache, private")
            for warning in getattr(self, "_warnings", ()):
                self.send_header("Warning", warning)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError, OSError):
            self.close_connection = True

    def _authenticate(self) -> Identity:
        identity = self.server.api.tokens.authenticate(self.headers.get("Authorization", ""))
        if identity is None:
            raise Unauthorized()
        return identity

    # -- routing -----------------------------------------------------------------------
    def _route(self, method: str, body: bytes) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [p for p in url.path.split("/") if p]
        path = "/" + "/".join(parts)
        if path in PUBLIC_PATHS and method == "GET":
            if path == "/version":
                self._send_json(200, discovery.version())
            else:
                self._send_text(200, "ok")
            return
        identity = self._authenticate()
        if method == "GET" and parts[:2] == ["openapi", "v3"]:
            self._openapi("/".join(parts[2:]))
            return
        if method == "GET":
            document = self._discovery(parts)
            if document is not None:
                self._send_json(200, document)
                return
        target = _parse_resource_path(parts)
        if target is None:
            raise NotFound("the server could not find the requested resource", details={})
        resource, namespace, name, subresource = target
        if subresource and not _serves_subresource(resource, name, subresource):
            raise NotFound("the server could not find the requested resource", details={})
        self._resource(method, identity, resource, namespace, name, subresource, query, body)

    def _openapi(self, group_version: str) -> None:
        if not group_version:
            self._send_json(200, openapi.root_document())
            return
        document = openapi.group_version_document(group_version)
        if document is None:
            raise NotFound("the server could not find the requested resource", details={})
        self._send_bytes(200, document)

    def _send_text(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _discovery(self, parts: list[str]) -> dict[str, Any] | None:
        bound_host, bound_port = self.server.bound()
        host = self.headers.get("Host") or f"{bound_host}:{bound_port}"
        if parts == ["api"]:
            return discovery.api_versions(host)
        if parts == ["api", "v1"]:
            return discovery.resource_list("", "v1")
        if parts == ["apis"]:
            return discovery.api_group_list()
        if len(parts) == 2 and parts[0] == "apis":
            return discovery.api_group(parts[1])
        if len(parts) == 3 and parts[0] == "apis":
            return discovery.resource_list(parts[1], parts[2])
        return None

    def _resource(
        self,
        method: str,
        identity: Identity,
        resource: Resource,
        namespace: str,
        name: str,
        subresource: str,
        query: dict[str, str],
        body: bytes,
    ) -> None:
        api = self.server.api
        registry = api.registry
        watching = query.get("watch") in ("true", "1")
        if subresource == "binding":
            if method != "POST":
                raise MethodNotAllowed(
                    "the server does not allow this method on the requested resource"
                )
            verb = "create"
        elif method == "GET":
            verb = "get" if name else ("watch" if watching else "list")
        elif method == "POST" and not name:
            verb = "create"
        elif method == "PUT" and name:
            verb = "update"
        elif method == "PATCH" and name:
            verb = "patch"
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            raise MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        parsed: Any = None
        media = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if body and media == PROTOBUF and verb in ("create", "update"):
            parsed = decode_protobuf(body)  # kubectl's typed clients (create configmap)
        elif body and verb in WRITE_BODIES and media not in _JSON_TYPES:
            raise UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/vnd.kubernetes.protobuf"
            )
        elif verb in ("create", "update") or (verb in WRITE_BODIES and body):
            try:
                # An object's fields named twice are noted for fieldValidation (FieldCheck).
                read = loads if verb in ("create", "update") else json.loads
                parsed = read(body) if body else None
            except (ValueError, UnicodeDecodeError) as exc:
                raise BadRequest(f"the body of the request is not valid JSON: {exc}") from exc
        if verb == "create" and isinstance(parsed, dict) and not subresource:
            name = str((parsed.get("metadata") or {}).get("name") or "")
        fields = None
        if verb in ("create", "update", "patch") and subresource != "binding":
            fields = FieldCheck(resource, query, verb)
        options = (
            parsed if verb in ("delete", "deletecollection") and isinstance(parsed, dict) else {}
        )
        dry_run = _dry_run(verb, query, options)
        request = Request(verb, resource, namespace, name, subresource)
        authorize(identity, request)
        admission: Admission | None = None
        if resource.kind == "Pod" and verb in ("update", "patch", "delete") and identity.node_name:
            # NodeRestriction looks at the pod as stored: the write checks the one it reads.
            admission = functools.partial(_admit_pod, identity, request)
        else:
            admit(identity, request, None)
        accept = self.headers.get("Accept", "")
        if subresource == "binding":
            registry.bind(namespace, name, parsed)
            self._send_json(
                201,
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                 "code": 201},
            )  # fmt: skip
        elif verb == "get":
            obj = registry.get(resource, namespace, name)
            self._send_object(200, resource, obj, accept, query)
        elif verb == "list":
            self._list(resource, namespace, query, accept)
        elif verb == "watch":
            self._watch(resource, namespace, query, accept)
        elif verb == "create":
            assert fields is not None
            fields(parsed)
            self._warnings = fields.warnings
            obj = registry.create(resource, namespace, parsed, dry_run=dry_run)
            self._send_object(201, resource, obj, accept, query)
        elif verb == "update":
            assert fields is not None
            fields(parsed)
            self._warnings = fields.warnings
            obj = registry.update(
                resource, namespace, name, parsed, subresource=subresource, dry_run=dry_run,
                admission=admission,
            )  # fmt: skip
            self._send_object(200, resource, obj, accept, query)
        elif verb == "patch":
            content_type = self.headers.get("Content-Type", "")
            assert fields is not None
            fields.patch = body
            obj = registry.patch(
                resource, namespace, name, content_type, body, subresource=subresource,
                dry_run=dry_run, check=fields, admission=admission,
            )  # fmt: skip
            self._warnings = fields.warnings
            self._send_object(200, resource, obj, accept, query)
        elif verb == "deletecollection":
            items = registry.delete_collection(
                resource, namespace or None, self._selection(resource, query),
                grace_seconds=_grace_seconds(query, options), dry_run=dry_run,
            )  # fmt: skip
            self._send_json(
                200,
                {"kind": resource.list_kind, "apiVersion": resource.api_version,
                 "metadata": {}, "items": items},
            )  # fmt: skip
        else:
            preconditions = options.get("preconditions") or {}
            deleted, gone = registry.delete(
                resource, namespace, name, preconditions=dict(preconditions),
                grace_seconds=_grace_seconds(query, options), dry_run=dry_run,
                admission=admission,
            )  # fmt: skip
            if resource.kind == "Pod" or not gone:
                # Pod storage answers with the object (ReturnDeletedObject), as does any
                # deletion that is graceful (the object is still there).
                self._send_object(200, resource, deleted, accept, query)
                return
            self._send_json(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": resource.group,
                        "kind": resource.name,
                        "uid": deleted["metadata"].get("uid", ""),
                    },
                },
            )

    def _send_object(
        self, code: int, resource: Resource, obj: Object, accept: str, query: dict[str, str]
    ) -> None:
        if wants_table(accept):
            rv = obj["metadata"].get("resourceVersion", "")
            body = table(resource, [obj], resource_version=rv, include_object=_include(query))
            self._send_json(code, body)
        else:
            self._send_json(code, obj)

    def _selection(self, resource: Resource, query: dict[str, str]) -> Selection:
        return Selection(
            labels=parse_label_selector(query.get("labelSelector", "")),
            fields=parse_field_selector(query.get("fieldSelector", ""), resource.selectable()),
        )

    def _list(self, resource: Resource, namespace: str, query: dict[str, str], accept: str) -> None:
        selection = self._selection(resource, query)
        try:
            limit = int(query.get("limit") or 0)
        except ValueError as exc:
            raise BadRequest(f"invalid limit: {query.get('limit')!r}") from exc
        as_table = wants_table(accept)
        listing = None
        if query.get("resourceVersion") == "0" and not query.get("continue"):
            # "Any version": served from the watch cache, as kube-apiserver does (what an
            # informer's first list asks for); "" reads the store.
            items, revision, _epoch = self.server.api.cache.snapshot(
                resource.list_prefix(namespace or None)
            )
            listing = Listing([KeyValue(k, v, 0, rev) for k, v, rev in items], revision)
        page = self.server.api.registry.list(
            resource,
            namespace or None,
            selection,
            limit=max(limit, 0),
            continue_token=query.get("continue", ""),
            raw=not as_table,
            listing=listing,
        )
        rv = str(page.revision)
        if page.raw is not None:
            head = {"kind": resource.list_kind, "apiVersion": resource.api_version}
            self._send_bytes(
                200,
                json.dumps(head, separators=(",", ":")).encode()[:-1]
                + b',"metadata":{"resourceVersion":"%s"},"items":[%s]}'
                % (rv.encode(), b",".join(page.raw)),
            )
            return
        if as_table:
            body = table(
                resource,
                page.items,
                resource_version=rv,
                include_object=_include(query),
                continue_token=page.continue_token,
            )
            self._send_json(200, body)
            return
        metadata: dict[str, Any] = {"resourceVersion": rv}
        if page.continue_token:
            metadata["continue"] = page.continue_token
        if page.remaining is not None:
            metadata["remainingItemCount"] = page.remaining
        self._send_json(
            200,
            {
                "kind": resource.list_kind,
                "apiVersion": resource.api_version,
                "metadata": metadata,
                "items": page.items,
            },
        )

    # -- watch -------------------------------------------------------------------------
    def _watch(
        self, resource: Resource, namespace: str, query: dict[str, str], accept: str
    ) -> None:
        selection = self._selection(resource, query)
        cache = self.server.api.cache
        prefix = resource.list_prefix(namespace or None)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        as_table = wants_table(accept)
        include = _include(query)
        try:
            timeout = float(query.get("timeoutSeconds") or 0)
        except ValueError as exc:
            raise BadRequest(f"invalid timeoutSeconds: {query.get('timeoutSeconds')!r}") from exc
        deadline = time.monotonic() + timeout if timeout > 0 else None
        wanted = query.get("resourceVersion", "")
        initial: list[Object] = []
        if wanted in ("", "0"):
            items, revision, epoch = cache.snapshot(prefix)
            for _key, value, mod_revision in items:
                obj = decode_value(value, mod_revision)
                if selection.matches(resource, obj):
                    initial.append(obj)
        else:
            try:
                revision = int(wanted)
            except ValueError as exc:
                raise BadRequest(f"invalid resourceVersion: {wanted!r}") from exc
            epoch = cache.epoch()
        stream = _Stream(self, resource, as_table, include)
        stream.start()
        try:
            if wanted not in ("", "0"):
                cache.check(revision)
            for obj in initial:
                stream.event("ADDED", obj)
            last_sent = time.monotonic()
            while not cache.stopped:
                wait = WATCH_WAIT_SECONDS
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                changes, revision_now = cache.changes_after(revision, epoch, max(wait, 0), prefix)
                sent = False
                for change in changes:
                    if not change.key.startswith(prefix):
                        continue
                    sent |= self._send_change(stream, resource, selection, change)
                revision = revision_now
                now = time.monotonic()
                if sent:
                    last_sent = now
                elif bookmarks and now - last_sent >= BOOKMARK_SECONDS:
                    stream.bookmark(revision)
                    last_sent = now
                elif not changes and self._client_gone():
                    return
            stream.finish()
        except Gone as exc:
            stream.error(exc.status())
            stream.finish()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError, OSError):
            self.close_connection = True

    def _send_change(
        self, stream: _Stream, resource: Resource, selection: Selection, change: Change
    ) -> bool:
        if selection.empty:  # every object matches: no need to look at it
            kind = change.type
        else:
            new = change.decoded()
            previous = change.decoded_previous()
            matches_now = selection.matches(resource, new)
            if change.type == "DELETED":
                kind = "DELETED" if matches_now else ""
            else:
                matched_before = previous is not None and selection.matches(resource, previous)
                if matches_now:
                    kind = "MODIFIED" if matched_before else "ADDED"
                else:
                    kind = "DELETED" if matched_before else ""
        if not kind:
            return False
        stream.change(kind, change)
        return True

    def _client_gone(self) -> bool:
        """True when the client closed its end (a watch otherwise only learns at a write)."""
        conn = self.connection
        try:
            readable, _, _ = select.select([conn], [], [], 0)
            if not readable:
                return False
            conn.settimeout(0.05)
            try:
                return bool(conn.recv(1) == b"")
            finally:
                conn.settimeout(self.timeout)
        except (ssl.SSLWantReadError, TimeoutError, BlockingIOError):
            return False
        except (OSError, ValueError):
            return True


class _Stream:
    """A chunked `watch` response: one JSON event per line, as kube-apiserver sends."""

    def __init__(
        self, handler: APIHandler, resource: Resource, as_table: bool, include: str
    ) -> None:
        self.handler = handler
        self.resource = resource
        self.as_table = as_table
        self.include = include
        self.headers_sent = False

    def start(self) -> None:
        handler = self.handler
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Cache-Control", "no-cache, private")
        # The connection ends with the watch: said so, or a client that pools connections
        # (httpx) sends its next request on a socket about to close.
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.flush()
        handler.close_connection = True

    def _write(self, event: dict[str, Any]) -> None:
        data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.handler.wfile.flush()

    def change(self, kind: str, change: Change) -> None:
        """A change from the watch cache, its JSON shared with every other watch."""
        if self.as_table:
            self.event(kind, change.decoded())
            return
        data = b'{"type":"%s","object":%s}\n' % (kind.encode(), change.encoded())
        self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.handler.wfile.flush()

    def event(self, kind: str, obj: Object) -> None:
        if self.as_table:
            body: Object = table(
                self.resource,
                [obj],
                resource_version=obj["metadata"].get("resourceVersion", ""),
                include_object=self.include,
                headers=not self.headers_sent,
            )
            self.headers_sent = True
        else:
            body = obj
        self._write({"type": kind, "object": body})

    def bookmark(self, revision: int) -> None:
        self._write(
            {
                "type": "BOOKMARK",
                "object": {
                    "kind": self.resource.kind,
                    "apiVersion": self.resource.api_version,
                    "metadata": {"resourceVersion": str(revision)},
                },
            }
        )

    def error(self, status: dict[str, Any]) -> None:
        self._write({"type": "ERROR", "object": status})

    def finish(self) -> None:
        self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()


def _admit_pod(identity: Identity, request: Request, current: Object) -> None:
    admit(identity, request, str((current.get("spec") or {}).get("nodeName") or ""))


def _dry_run(verb: str, query: dict[str, str], options: dict[str, Any]) -> bool:
    """dryRun=All (the only value there is): the request is checked and answered, and
    nothing is stored."""
    values = [query["dryRun"]] if query.get("dryRun") else []
    if isinstance(options.get("dryRun"), list):
        values += [str(v) for v in options["dryRun"]]
    if not values:
        return False
    if verb not in ("create", "update", "patch", "delete", "deletecollection"):
        raise BadRequest(f"dryRun is not an option of {verb}")
    for value in values:
        if value != "All":
            raise BadRequest(f'Invalid dry run value: "{value}" (supported: All)')
    return True


def _grace_seconds(query: dict[str, str], options: dict[str, Any]) -> int | None:
    value = query.get("gracePeriodSeconds")
    if value is None:
        value = options.get("gracePeriodSeconds")
    if value is None:
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"invalid gracePeriodSeconds: {value!r}") from exc
    return max(0, seconds)


def _serves_subresource(resource: Resource, name: str, subresource: str) -> bool:
    if not name:
        return False
    if subresource == "status":
        return resource.has_status
    return subresource == "binding" and resource.kind == "Pod"


def _include(query: dict[str, str]) -> str:
    value = query.get("includeObject", "Metadata")
    return value if value in ("None", "Metadata", "Object") else "Metadata"


def _parse_resource_path(parts: list[str]) -> tuple[Resource, str, str, str] | None:
    """(resource, namespace, name, subresource) for /api/v1/... and /apis/G/V/..."""
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = ""
    namespace_subresource = len(rest) == 3 and find(group, version, rest[2]) is None
    if len(rest) >= 3 and rest[0] == "namespaces" and not namespace_subresource:
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    resource = find(group, version, rest[0])
    if resource is None:
        return None
    if namespace and not resource.namespaced:
        return None
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if resource.namespaced and name and not namespace:
        return None
    return resource, namespace, name, subresource
