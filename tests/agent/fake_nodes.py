"""An in-memory NodeSource: node objects with revisions and a watch, as the store keeps them."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class FakeNode:
    name: str
    pod_cidrs: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeChange:
    name: str
    node: FakeNode | None
    revision: int


class FakeNodes:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.revision = 0
        self.nodes: dict[str, FakeNode] = {}
        self.history: list[FakeChange] = []
        self.break_watches = 0  # how many upcoming watch.get calls fail
        self.network_up: set[str] = set()

    def _record(self, name: str, node: FakeNode | None) -> None:
        with self.cond:
            self.revision += 1
            if node is None:
                self.nodes.pop(name, None)
            else:
                self.nodes[name] = node
            self.history.append(FakeChange(name, node, self.revision))
            self.cond.notify_all()

    def put(self, name: str, *, pod_cidrs: Sequence[str] = ()) -> None:
        with self.cond:
            old = self.nodes.get(name, FakeNode(name))
            self._record(name, replace(old, pod_cidrs=tuple(pod_cidrs)))

    def delete(self, name: str) -> None:
        self._record(name, None)

    # -- NodeSource --
    def list_nodes(self) -> tuple[list[FakeNode], str]:
        with self.cond:
            return sorted(self.nodes.values(), key=lambda n: n.name), str(self.revision)

    def get_node(self, name: str) -> FakeNode | None:
        with self.cond:
            return self.nodes.get(name)

    def annotate_node(self, name: str, annotations: Mapping[str, str]) -> None:
        with self.cond:
            old = self.nodes[name]
            self._record(name, replace(old, annotations={**old.annotations, **annotations}))

    def report_network_up(self, name: str) -> None:
        with self.cond:
            self.network_up.add(name)

    def watch_nodes(self, after: str) -> FakeWatch:
        return FakeWatch(self, int(after) + 1)


class FakeWatch:
    def __init__(self, source: FakeNodes, from_revision: int) -> None:
        self.source = source
        self.next = from_revision

    def get(self, timeout: float | None = None) -> list[FakeChange]:
        with self.source.cond:
            if self.source.break_watches:
                self.source.break_watches -= 1
                raise ConnectionError("store went away")
            self.source.cond.wait_for(lambda: self.source.revision >= self.next, timeout)
            changes = [c for c in self.source.history if c.revision >= self.next]
            if changes:
                self.next = changes[-1].revision + 1
            return changes

    def close(self) -> None:
        pass
