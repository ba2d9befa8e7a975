"""Decoding what the runtime answers over CRI: the parts that need no daemon."""

from __future__ import annotations

import json

from podnet.cri._client import _netns_from_info


def test_pod_netns_from_verbose_status() -> None:
    spec = {"linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/s/cni-1"}]}}
    assert _netns_from_info({"info": json.dumps({"runtimeSpec": spec})}) == "/s/cni-1"
    host_network = {"linux": {"namespaces": [{"type": "pid"}]}}
    assert _netns_from_info({"info": json.dumps({"runtimeSpec": host_network})}) is None
    assert _netns_from_info({}) is None
    assert _netns_from_info({"info": "not json"}) is None
