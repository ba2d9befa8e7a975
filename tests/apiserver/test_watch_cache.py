"""The watch cache wakes a watch for changes of its own resource only (a Pod change
wakes no watch of nodes, and the other way round), and still hands it every change
after its revision once it wakes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from podnet.apiserver._watch import WatchCache
from podnet.store import open_store


def _wait_for_revision(cache: WatchCache, revision: int) -> None:
    deadline = time.monotonic() + 10
    while cache.revision < revision:
        assert time.monotonic() < deadline, "the cache never saw the write"
        time.sleep(0.01)


def test_a_watch_wakes_for_its_own_resource(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/cluster.db")
    cache = WatchCache(store)
    try:
        start, epoch = cache.revision, cache.epoch()
        answers: dict[str, Any] = {}

        def watch(prefix: str) -> None:
            answers[prefix] = cache.changes_after(start, epoch, 20.0, prefix)

        pods = threading.Thread(target=watch, args=("/registry/pods/default/",))
        everything = threading.Thread(target=watch, args=("/registry/",))
        pods.start()
        everything.start()
        time.sleep(0.2)  # both waiting
        node = store.create("/registry/minions/n1", b'{"metadata":{"name":"n1"}}')
        assert node is not None
        _wait_for_revision(cache, node.mod_revision)
        everything.join(10)
        assert not everything.is_alive(), "a watch of everything wakes for a node"
        time.sleep(0.3)
        assert pods.is_alive(), "a watch of pods slept through the node's change"
        pod = store.create("/registry/pods/default/web", b'{"metadata":{"name":"web"}}')
        assert pod is not None
        pods.join(10)
        assert not pods.is_alive(), "a watch of pods wakes for a pod"
        changes, revision = answers["/registry/pods/default/"]
        assert [(c.type, c.key) for c in changes] == [
            ("ADDED", "/registry/minions/n1"),
            ("ADDED", "/registry/pods/default/web"),
        ]
        assert revision == pod.mod_revision
    finally:
        cache.close()
        store.close()
