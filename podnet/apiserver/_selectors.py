"""Label and field selectors, parsed as the API server parses them
(k8s.io/apimachinery/pkg/labels and pkg/fields).

Labels: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x,y)`, `a`, `!a`, joined by commas.
Fields: `path=value`, `path==value`, `path!=value`, joined by commas; which paths a
resource supports is the resource's business (an unknown one is a 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from podnet.apiserver._status import BadRequest

_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
)
_SET_TERM = re.compile(r"\s*(!?)\s*([^\s!=(),]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*")
_EQ_TERM = re.compile(r"\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s,]*)\s*")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # "!=" and "notin"


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _split_terms(text: str) -> list[str]:
    """Split on the commas outside parentheses."""
    terms, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def parse_label_selector(text: str) -> LabelSelector:
    requirements = []
    for term in _split_terms(text):
        equality = _EQ_TERM.fullmatch(term)
        if equality:
            key, op, value = equality.groups()
            _check_key(key, text)
            requirements.append(Requirement(key, "!=" if op == "!=" else "=", frozenset([value])))
            continue
        setbased = _SET_TERM.fullmatch(term)
        if not setbased:
            raise BadRequest(f"unable to parse requirement: {term.strip()!r}")
        negated, key, op, values = setbased.groups()
        _check_key(key, text)
        if op:
            if negated:
                raise BadRequest(f"unable to parse requirement: {term.strip()!r}")
            items = frozenset(v.strip() for v in values.split(",") if v.strip())
            requirements.append(Requirement(key, op, items))
        else:
            requirements.append(Requirement(key, "!" if negated else "exists", frozenset()))
    return LabelSelector(tuple(requirements))


def _check_key(key: str, text: str) -> None:
    if not _LABEL_KEY.fullmatch(key):
        raise BadRequest(f'unable to parse requirement: invalid label key "{key}" in "{text}"')


# -- fields ----------------------------------------------------------------------------
FieldGetter = Callable[[Mapping[str, object]], str]


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    negated: bool
    value: str


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, object], fields: Mapping[str, FieldGetter]) -> bool:
        for requirement in self.requirements:
            equal = fields[requirement.path](obj) == requirement.value
            if equal == requirement.negated:
                return False
        return True

    def value_of(self, path: str) -> str | None:
        """The value `path` must equal, when the selector pins one."""
        for requirement in self.requirements:
            if requirement.path == path and not requirement.negated:
                return requirement.value
        return None


def parse_field_selector(text: str, supported: Mapping[str, FieldGetter]) -> FieldSelector:
    requirements = []
    for term in _split_terms(text):
        match = _EQ_TERM.fullmatch(term)
        if not match:
            raise BadRequest(f"invalid selector: '{text}'; can't understand '{term.strip()}'")
        path, op, value = match.groups()
        if path not in supported:
            raise BadRequest(f"field label not supported: {path}")
        requirements.append(FieldRequirement(path, op == "!=", value))
    return FieldSelector(tuple(requirements))
