"""Request bodies in Kubernetes' protobuf encoding, for the kinds kubectl sends that way.

kubectl's typed clients (`kubectl create configmap`, `kubectl create namespace`) POST
`application/vnd.kubernetes.protobuf` and do not fall back to JSON on 415, so the server
reads those bodies: the envelope (magic "k8s\\0", then runtime.Unknown {typeMeta, raw}) and
the kind's own message from k8s.io/api's generated.proto field numbers. Only the kinds
below are decoded (ConfigMap, Namespace); any other protobuf body is a 415, and answers
are always JSON (kubectl accepts both).

The decoder is the protobuf wire format itself (varints, length-delimited fields), not
generated code: these few messages do not justify compiling k8s.io/api's .proto files.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from podnet.apiserver._status import BadRequest, UnsupportedMediaType

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

Fields = list[tuple[int, int | bytes]]


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise BadRequest("malformed protobuf body: a truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data: bytes) -> Fields:
    """(field number, value) pairs: ints for varint and fixed fields, bytes otherwise."""
    found: Fields = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            found.append((number, value))
        elif wire == 2:
            length, at = _varint(data, at)
            if at + length > len(data):
                raise BadRequest("malformed protobuf body: a field runs past the end")
            found.append((number, data[at : at + length]))
            at += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            found.append((number, int.from_bytes(data[at : at + size], "little")))
            at += size
        else:
            raise BadRequest(f"malformed protobuf body: wire type {wire}")
    return found


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise BadRequest("malformed protobuf body: a string field is not length-delimited")
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise BadRequest("malformed protobuf body: a string is not UTF-8") from exc


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise BadRequest("malformed protobuf body: a bytes field is not length-delimited")
    return value


def _entry(value: int | bytes, decode: Callable[[bytes], Any]) -> tuple[str, Any]:
    key, item = "", decode(b"")
    for number, part in fields(_bytes(value)):
        if number == 1:
            key = _text(part)
        elif number == 2:
            item = decode(_bytes(part))
    return key, item


def _string_map(pairs: list[int | bytes]) -> dict[str, str]:
    return dict(_entry(p, lambda raw: raw.decode(errors="strict")) for p in pairs)


def _object_meta(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    labels: list[int | bytes] = []
    annotations: list[int | bytes] = []
    finalizers: list[str] = []
    for number, value in fields(data):
        if number in (1, 2, 3, 5, 6) and _text(value):
            name = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
            meta[name[number]] = _text(value)
        elif number == 11:
            labels.append(value)
        elif number == 12:
            annotations.append(value)
        elif number == 14:
            finalizers.append(_text(value))
    if labels:
        meta["labels"] = _string_map(labels)
    if annotations:
        meta["annotations"] = _string_map(annotations)
    if finalizers:
        meta["finalizers"] = finalizers
    return meta


def _config_map(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}
    text: list[int | bytes] = []
    binary: dict[str, str] = {}
    for number, value in fields(data):
        if number == 1:
            obj["metadata"] = _object_meta(_bytes(value))
        elif number == 2:
            text.append(value)
        elif number == 3:
            key, raw = _entry(value, lambda raw: raw)
            binary[key] = base64.b64encode(raw).decode()
        elif number == 4:
            obj["immutable"] = bool(value)
    if text:
        obj["data"] = _string_map(text)
    if binary:
        obj["binaryData"] = binary
    return obj


def _namespace(data: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {}}
    for number, value in fields(data):
        if number == 1:
            obj["metadata"] = _object_meta(_bytes(value))
        elif number == 2:
            finalizers = [_text(v) for n, v in fields(_bytes(value)) if n == 1]
            if finalizers:
                obj["spec"] = {"finalizers": finalizers}
    return obj


DECODERS: dict[tuple[str, str], Callable[[bytes], dict[str, Any]]] = {
    ("v1", "ConfigMap"): _config_map,
    ("v1", "Namespace"): _namespace,
}


def decode_protobuf(body: bytes) -> dict[str, Any]:
    """The object in a protobuf request body, as its JSON form."""
    if not body.startswith(_MAGIC):
        raise BadRequest("malformed protobuf body: no k8s envelope")
    api_version = kind = ""
    raw = b""
    for number, value in fields(body[len(_MAGIC) :]):
        if number == 1:
            for part, text in fields(_bytes(value)):
                if part == 1:
                    api_version = _text(text)
                elif part == 2:
                    kind = _text(text)
        elif number == 2:
            raw = _bytes(value)
        elif number == 3 and _bytes(value):
            raise UnsupportedMediaType("protobuf bodies with a content encoding are not served")
    decoder = DECODERS.get((api_version, kind))
    if decoder is None:
        served = ", ".join(k for _v, k in DECODERS)
        raise UnsupportedMediaType(
            f"podnet's API server reads protobuf bodies of {served} only, not "
            f"{api_version}/{kind}: send application/json"
        )
    return decoder(raw)
