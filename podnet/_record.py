"""Value classes without generated code: equality and repr (and, for frozen ones, a hash)
by the fields in __slots__.

Every class on a pod's path is built again by each CNI executable that runs its plugin
in-process (the launcher's fallback while the agent restarts). A dataclass generates and
compiles its methods per class; a typing.NamedTuple does too, and with postponed
annotations compiles every field's annotation, the first of which builds all of the ast
module's types. Measured with callgrind, 15 such classes cost ~20 million instructions,
more than the plugin's own work on a pod; as Record subclasses they cost almost nothing.

A subclass lists its fields in __slots__ (the order of repr and equality) and assigns
them in its __init__. A field that never changes is annotated Final there, which mypy
enforces.
"""

from __future__ import annotations


class Record:
    """Equal to a record of the same class with equal fields; unhashable (it may change),
    as a dataclass with eq."""

    __slots__: tuple[str, ...] = ()
    # The fields equality, hash and repr go by, when not all of __slots__.
    _compared: tuple[str, ...] | None = None

    def _names(self) -> tuple[str, ...]:
        return self.__slots__ if self._compared is None else self._compared

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._names())

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._names())
        return f"{type(self).__name__}({fields})"


class FrozenRecord(Record):
    """A record whose fields never change (Final): hashable by them, as a frozen
    dataclass."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash((type(self), self._fields()))


__all__ = ["FrozenRecord", "Record"]
