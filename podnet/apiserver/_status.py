"""Errors as the API server answers them: a `Status` object with the HTTP code, the
reason and, for 422, the field causes. The messages follow kube-apiserver's wording
(k8s.io/apimachinery/pkg/api/errors), so clients that match on them keep working.

    APIError                 any refusal, carried to the client as a Status
    ├── BadRequest 400       the request itself is malformed
    ├── Unauthorized 401     no or unknown bearer token
    ├── Forbidden 403        the identity may not do this
    ├── NotFound 404
    ├── MethodNotAllowed 405
    ├── Conflict 409         a stale resourceVersion (reason Conflict) or a name taken
    │                        (reason AlreadyExists)
    ├── Gone 410             a watch or continue from history no longer kept (Expired)
    ├── UnsupportedMediaType 415
    └── Invalid 422          the object breaks a validation rule; causes name the fields
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(APIError):
    code = 400
    reason = "BadRequest"


class Unauthorized(APIError):
    code = 401
    reason = "Unauthorized"

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class Forbidden(APIError):
    code = 403
    reason = "Forbidden"


class NotFound(APIError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(APIError):
    code = 405
    reason = "MethodNotAllowed"


class Conflict(APIError):
    code = 409
    reason = "Conflict"


class Gone(APIError):
    code = 410
    reason = "Expired"


class UnsupportedMediaType(APIError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(APIError):
    code = 422
    reason = "Invalid"


def _details(resource: str, name: str, group: str = "") -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> NotFound:
    return NotFound(
        f'{_qualified(resource, group)} "{name}" not found',
        details=_details(resource, name, group),
    )


def already_exists(resource: str, name: str, group: str = "") -> Conflict:
    return Conflict(
        f'{_qualified(resource, group)} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(resource, name, group),
    )


def conflict(resource: str, name: str, group: str = "") -> Conflict:
    return Conflict(
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": the object '
        "has been modified; please apply your changes to the latest version and try again",
        details=_details(resource, name, group),
    )


def forbidden(resource: str, name: str, group: str, reason: str) -> Forbidden:
    target = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    return Forbidden(f"{target} is forbidden: {reason}", details=_details(resource, name, group))


def invalid(kind: str, name: str, causes: list[tuple[str, str]], group: str = "") -> Invalid:
    """`causes` are (field, "Reason: detail") pairs, as field.ErrorList renders them."""
    rendered = ", ".join(f"{field}: {detail}" for field, detail in causes)
    details = _details(kind, name, group)
    details["causes"] = [
        {"reason": _cause_reason(detail), "message": detail, "field": field}
        for field, detail in causes
    ]
    return Invalid(f'{_qualified(kind, group)} "{name}" is invalid: {rendered}', details=details)


def _cause_reason(detail: str) -> str:
    head = detail.split(":", 1)[0]
    return {
        "Invalid value": "FieldValueInvalid",
        "Required value": "FieldValueRequired",
        "Forbidden": "FieldValueForbidden",
        "Unsupported value": "FieldValueNotSupported",
        "Duplicate value": "FieldValueDuplicate",
    }.get(head, "FieldValueInvalid")


def expired(message: str) -> Gone:
    return Gone(message)
