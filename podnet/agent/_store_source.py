"""The cluster store's nodes as the agent loop's `NodeSource`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from podnet.store import Conflict, Node, NodeChange, Nodes, Watch

_ANNOTATE_RETRIES = 10


class StoreNodeWatch:
    def __init__(self, nodes: Nodes, watch: Watch) -> None:
        self._nodes = nodes
        self._watch = watch

    def get(self, timeout: float | None = None) -> Sequence[NodeChange]:
        return [self._nodes.change(event) for event in self._watch.get(timeout)]

    def close(self) -> None:
        self._watch.close()


class StoreNodeSource:
    def __init__(self, nodes: Nodes) -> None:
        self.nodes = nodes

    def list_nodes(self) -> tuple[Sequence[Node], str]:
        nodes, revision = self.nodes.list()
        return nodes, str(revision)

    def watch_nodes(self, after: str) -> StoreNodeWatch:
        watch = self.nodes.store.watch(self.nodes.prefix, from_revision=int(after) + 1)
        return StoreNodeWatch(self.nodes, watch)

    def get_node(self, name: str) -> Node | None:
        return self.nodes.get(name)

    def report_network_up(self, name: str) -> None:
        """Nothing reads a node condition in the store: no scheduler or kubelet there."""

    def annotate_node(self, name: str, annotations: Mapping[str, str]) -> None:
        """Merge `annotations` into the node's; another writer in between means read again."""
        for _ in range(_ANNOTATE_RETRIES):
            node = self.nodes.require(name)
            merged = {**node.annotations, **annotations}
            if merged == dict(node.annotations):
                return
            try:
                self.nodes.update(node.with_annotations(merged), base=node)
                return
            except Conflict:
                continue
        raise Conflict(self.nodes.resource, name)
