"""What the Kubernetes-shaped objects (Node, Event) share: their errors, worded as the API
server words them, and timestamps."""

from __future__ import annotations

import calendar
import time

from podnet.store._errors import StoreError


class ObjectError(StoreError):
    """A request about one object that the store refuses."""


class AlreadyExists(ObjectError):
    def __init__(self, resource: str, name: str) -> None:
        super().__init__(f'{resource} "{name}" already exists')


class NotFound(ObjectError):
    def __init__(self, resource: str, name: str) -> None:
        super().__init__(f'{resource} "{name}" not found')


class Invalid(ObjectError):
    """`Kind "name" is invalid: field: Reason: detail`, as the API server answers."""

    def __init__(self, kind: str, name: str, causes: list[str]) -> None:
        super().__init__(f'{kind} "{name}" is invalid: ' + ", ".join(causes))
        self.causes = causes


class Conflict(ObjectError):
    """The object changed since it was read: reread and try again."""

    def __init__(self, resource: str, name: str) -> None:
        super().__init__(
            f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again"
        )


def now_rfc3339(clock: float | None = None) -> str:
    """UTC time with second precision, the way Kubernetes writes metav1.Time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if clock is None else clock))


def parse_rfc3339(stamp: str) -> float:
    """Seconds since the epoch for a timestamp from `now_rfc3339`; 0 when unparsable."""
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))
    except (ValueError, OverflowError):
        return 0.0
