"""Throwaway namespaces for the netlink tests, always deleted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from podnet.netlink import create_netns, delete_netns


@pytest.fixture
def netns_pair() -> Iterator[tuple[str, str]]:
    """(node, pod): two fresh namespaces."""
    suffix = uuid.uuid4().hex[:8]
    node, pod = f"/var/run/netns/pn-nl-node-{suffix}", f"/var/run/netns/pn-nl-pod-{suffix}"
    create_netns(node)
    try:
        create_netns(pod)
        try:
            yield node, pod
        finally:
            delete_netns(pod)
    finally:
        delete_netns(node)
