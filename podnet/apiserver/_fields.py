"""Unknown and duplicate fields in a request body, as kube-apiserver's decoder finds them
(`fieldValidation`): the names and types of every kind's fields come from lightkube's
models of the Kubernetes API (a dependency already), generated from its OpenAPI schemas.

kube-apiserver decodes a body into the kind's Go type, which drops what the type does
not have and keeps the last of a field named twice; `fieldValidation` says what a client
hears of it: Ignore (nothing), Warn (a `Warning: 299 - "unknown field \\"spec.foo\\""`
header per field, `duplicate field` for one named twice, the default) or Strict (400,
"Pod in version \\"v1\\" cannot be handled as a Pod: strict decoding error: unknown field
\\"spec.foo\\", duplicate field \\"metadata.name\\""). Here too the unknown fields are
dropped before the object is stored, so what is stored has the API's shape whatever a
client sent. A create or update body is read with `loads` to know its duplicates (the
JSON objects that named a key twice remember it; the last value is kept, as json.loads
keeps it).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import typing
from functools import cache
from typing import Any

from podnet.apiserver._resources import RESOURCES, Resource
from podnet.apiserver._status import BadRequest, invalid

DIRECTIVES = ("Ignore", "Warn", "Strict")
DEFAULT_DIRECTIVE = "Warn"  # kube-apiserver's when a request names none


def directive(query: dict[str, str], verb: str) -> str:
    """The request's fieldValidation (Warn when it names none); an unknown one is refused
    as kube-apiserver refuses it, by the options kind of the verb."""
    value = query.get("fieldValidation", "")
    if value and value not in DIRECTIVES:
        options = {"create": "CreateOptions", "update": "UpdateOptions"}.get(verb, "PatchOptions")
        supported = '"", "Ignore", "Strict", "Warn"'
        raise invalid(
            options,
            "",
            [("fieldValidation", f'Unsupported value: "{value}": supported values: {supported}')],
            group="meta.k8s.io",
        )
    return value or DEFAULT_DIRECTIVE


def model(resource: Resource) -> type | None:
    """lightkube's model class of the kind (None for a kind it lacks: nothing checked)."""
    return _model(resource.group, resource.version, resource.kind)


@cache
def _model(group: str, version: str, kind: str) -> type | None:
    module_name = f"lightkube.models.{group.split('.')[0] if group else 'core'}_{version}"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    found = getattr(module, kind, None)
    return found if isinstance(found, type) and dataclasses.is_dataclass(found) else None


@cache
def _fields(cls: type) -> dict[str, Any]:
    """JSON field name -> its type (Optional removed), for a model class."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name.startswith("_"):
            continue
        out[field.metadata.get("json", field.name)] = _strip_optional(hints[field.name])
    return out


def _strip_optional(hint: Any) -> Any:
    if typing.get_origin(hint) is typing.Union:
        kept = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return kept[0] if len(kept) == 1 else Any
    return hint


def load_models() -> None:
    """Import the models of every kind served (half a second): done at the server's start,
    in the background, rather than in its first write."""
    for resource in RESOURCES:
        cls = model(resource)
        if cls is not None:
            _fields(cls)


class Repeated(dict[str, Any]):
    """A JSON object that named keys more than once: `repeated`, in the order met."""

    repeated: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    marked = Repeated(obj)
    marked.repeated = []
    for key, _value in pairs:
        if key in seen and key not in marked.repeated:
            marked.repeated.append(key)
        seen.add(key)
    return marked


def loads(body: bytes) -> Any:
    """json.loads, the objects with a key named twice marked (`Repeated`)."""
    return json.loads(body, object_pairs_hook=_object)


def drop_unknown(resource: Resource, obj: Any) -> list[str]:
    """Remove the fields the kind does not have from `obj` (in place); what a strict
    decoding reports of them and of the fields named twice (an object read by `loads`),
    in kube-apiserver's words and spelling (unknown field "spec.containers[0].foo",
    duplicate field "metadata.name"), in the order met."""
    cls = model(resource)
    if cls is None or not isinstance(obj, dict):
        return []
    found: list[str] = []
    _walk(obj, cls, "", found)
    return found


def _walk(value: Any, hint: Any, path: str, found: list[str]) -> None:
    origin = typing.get_origin(hint)
    if origin is list:
        if isinstance(value, list):
            (item,) = typing.get_args(hint) or (Any,)
            for index, element in enumerate(value):
                _walk(element, item, f"{path}[{index}]", found)
        return
    if origin is dict or hint is dict:  # a map (lightkube types some as plain dict)
        if isinstance(value, dict):
            args = typing.get_args(hint)
            item = args[1] if len(args) == 2 else Any
            repeated = value.repeated if isinstance(value, Repeated) else []
            for key, element in value.items():
                if key in repeated:
                    found.append(f'duplicate field "{path}.{key}"')
                _walk(element, item, f"{path}[{key}]", found)
        return
    if not (isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict)):
        return
    fields = _fields(hint)
    repeated = value.repeated if isinstance(value, Repeated) else []
    for key in list(value):
        where = f"{path}.{key}" if path else key
        if key not in fields:
            found.append(f'unknown field "{where}"')
            del value[key]
            continue
        if key in repeated:
            found.append(f'duplicate field "{where}"')
        _walk(value[key], fields[key], where, found)


def strict_error(resource: Resource, found: list[str]) -> BadRequest:
    return BadRequest(
        f'{resource.kind} in version "{resource.version}" cannot be handled as a '
        f"{resource.kind}: strict decoding error: {', '.join(found)}"
    )


def warnings(found: list[str]) -> list[str]:
    """The Warning header values (RFC 7234: code 299, agent "-", quoted text)."""
    return ['299 - "{}"'.format(text.replace("\\", "\\\\").replace('"', '\\"')) for text in found]


class FieldCheck:
    """The request's fieldValidation applied to the object to be stored: unknown fields
    dropped; Strict refuses, Warn keeps a warning per field (`warnings`)."""

    def __init__(self, resource: Resource, query: dict[str, str], verb: str) -> None:
        self.resource = resource
        self.verb = verb
        self.directive = directive(query, verb)
        self.warnings: list[str] = []
        self.patch = b""  # the patch as sent, for a Strict patch's refusal

    def __call__(self, obj: Any) -> None:
        found = drop_unknown(self.resource, obj)
        if not found:
            return
        if self.directive == "Strict":
            if self.verb != "patch":
                raise strict_error(self.resource, found)
            # A patch is refused as the patched object's field: patch: Invalid value.
            text = self.patch.decode(errors="replace")
            raise invalid(
                "",
                "",
                [
                    (
                        "patch",
                        f'Invalid value: "{text}": strict decoding error: {", ".join(found)}',
                    )
                ],
            )
        if self.directive == "Warn":
            self.warnings = warnings(found)  # a patch retried on a conflict is checked again
