"""The backends, by the name net-conf.json's `Backend.Type` uses: the one table of them.
The config parser, the CLI's choices and the help texts take their names from here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from podnet.agent._backend import Backend, BackendSetup, LocalNode
from podnet.agent._hostgw import HOST_GW, setup_host_gw
from podnet.agent._vxlan import VXLAN, setup_vxlan

if TYPE_CHECKING:
    from podnet.agent._config import NetworkConfig
    from podnet.netlink import Rtnl

BACKENDS: dict[str, BackendSetup] = {
    VXLAN: setup_vxlan,
    HOST_GW: setup_host_gw,
}
BACKEND_TYPES = tuple(BACKENDS)
# flannel's documented default (its code would fall back to udp, which podnet does not have)
DEFAULT_BACKEND = VXLAN


def setup_backend(rtnl: Rtnl, config: NetworkConfig, node: LocalNode) -> Backend:
    """Set up the configured backend on this node (the config parser already rejected
    any type not in BACKENDS)."""
    return BACKENDS[config.backend.type](rtnl, config, node)
