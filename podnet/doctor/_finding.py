"""What one check found: a problem (or that all is well), its evidence and its fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OK = "ok"
WARNING = "warning"  # pods still get addresses, but something will bite (shadowed configs)
ERROR = "error"  # pods fail, or will fail, to get an address or to reach each other
SKIPPED = "skipped"  # nothing to check against (no API given, no device yet)


@dataclass(frozen=True)
class Finding:
    """`repair` is set only for a fix that cannot cut off a running pod: `--fix` applies
    it and returns what it did; every other fix is a sentence for a person."""

    check: str
    status: str
    message: str
    evidence: tuple[str, ...] = ()
    fix: str = ""
    repair: Callable[[], str] | None = field(default=None, compare=False, repr=False)

    @property
    def wrong(self) -> bool:
        return self.status in (WARNING, ERROR)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "message": self.message,
            "evidence": list(self.evidence),
            "fix": self.fix,
            "safeFix": self.repair is not None,
        }


def ok(check: str, message: str, *evidence: str) -> Finding:
    return Finding(check, OK, message, tuple(evidence))


def problem(
    check: str,
    message: str,
    *,
    evidence: tuple[str, ...] = (),
    fix: str,
    repair: Callable[[], str] | None = None,
    status: str = ERROR,
) -> Finding:
    return Finding(check, status, message, evidence, fix, repair)
