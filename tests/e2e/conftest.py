"""Fixtures for the end-to-end tests: lab nodes with a real containerd each.

grpc must not have fork support on when anything in the process forks with Python code
running in the child (pyroute2's netns helper does): its fork handlers crash. It reads
the switch once, when first imported, so it is set here, before any test module of this
directory imports podnet.lab (which imports grpc).
"""

from __future__ import annotations

import os

os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "0"

from collections.abc import Callable, Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.e2e.nodes import (  # noqa: E402
    PLUGIN_SETS,
    Node,
    PluginSet,
    e2e_unavailable,
    make_plugin_set,
)


@pytest.fixture(autouse=True)
def _needs_containerd() -> None:
    reasons = e2e_unavailable()
    if reasons:
        pytest.skip("containerd cannot run pods here: " + "; ".join(reasons))


@pytest.fixture(params=PLUGIN_SETS)
def plugins(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PluginSet:
    """The CNI plugins containerd runs: the reference binaries, or podnet's executables
    (installed by `podnet install-cni`) with reference ones for types podnet lacks."""
    plugin_set = make_plugin_set(request.param, str(tmp_path_factory.mktemp("cni-bin")))
    if plugin_set.skip_reason:
        pytest.skip(plugin_set.skip_reason)
    return plugin_set


@pytest.fixture
def make_node(plugins: PluginSet) -> Iterator[Callable[..., Node]]:
    """Factory for lab nodes (netns + containerd); all of them are torn down afterwards,
    whatever the test did, and whatever was left is reported as a failure."""
    nodes: list[Node] = []

    def factory(subnet: str = "10.244.1.0/24", **kwargs: object) -> Node:
        node = Node.create(plugins, subnet=subnet, **kwargs)  # type: ignore[arg-type]
        nodes.append(node)
        return node

    yield factory
    leftovers = []
    for node in reversed(nodes):
        leftovers += node.destroy()
    assert not leftovers, f"teardown left things behind: {leftovers}"
