"""The backends, by the name net-conf.json's `Backend.Type` uses."""

from __future__ import annotations

from podnet.agent._backend import Backend, BackendSetup, LocalNode
from podnet.agent._config import NetworkConfig
from podnet.agent._hostgw import setup_host_gw
from podnet.agent._vxlan import setup_vxlan
from podnet.netlink import Rtnl

BACKENDS: dict[str, BackendSetup] = {
    "vxlan": setup_vxlan,
    "host-gw": setup_host_gw,
}


def setup_backend(rtnl: Rtnl, config: NetworkConfig, node: LocalNode) -> Backend:
    """Set up the configured backend on this node (the config parser already rejected
    any type not in BACKENDS)."""
    return BACKENDS[config.backend.type](rtnl, config, node)
