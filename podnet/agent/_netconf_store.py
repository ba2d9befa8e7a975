"""The cluster network's config in the store: flannel's net-conf.json, at one key every
agent reads (flannel's etcd mode keeps it at /coreos.com/network/config)."""

from __future__ import annotations

import json
from typing import Any

from podnet.agent._config import NetworkConfig
from podnet.store import Store

NETWORK_CONFIG_KEY = "/podnet/network/config"


def read_network_config(store: Store) -> NetworkConfig | None:
    """The stored config, or None while nobody has written one. ConfigError if invalid."""
    kv = store.get(NETWORK_CONFIG_KEY)
    return NetworkConfig.from_json(kv.value) if kv is not None else None


def write_network_config(store: Store, data: dict[str, Any]) -> NetworkConfig:
    """Validate and store a net-conf (replacing any previous one)."""
    config = NetworkConfig.from_dict(data)
    value = json.dumps(data, sort_keys=True).encode()
    current = store.get(NETWORK_CONFIG_KEY)
    if current is None:
        if store.create(NETWORK_CONFIG_KEY, value) is None:
            current = store.get(NETWORK_CONFIG_KEY)
    if current is not None and current.value != value:
        store.update(NETWORK_CONFIG_KEY, value, revision=current.mod_revision)
    return config
