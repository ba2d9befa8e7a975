"""The only place that touches netlink and network namespaces.

pyroute2 is imported lazily (it costs ~120 ms), and a socket for another namespace is
created in a thread that entered it (see _netns), never through pyroute2's forking
`IPRoute(netns=...)`, which crashes grpc clients in the same process.
"""

from podnet.netlink._lab_links import (
    add_address,
    add_default_route,
    create_bridge,
    create_veth,
    set_loopback_up,
    set_master,
)
from podnet.netlink._loopback import bring_up_loopback
from podnet.netlink._neigh import (
    FdbEntry,
    Neighbour,
    fdb_delete,
    fdb_entries,
    fdb_replace,
    neigh_delete,
    neigh_replace,
    permanent_neighbours,
)
from podnet.netlink._netns import (
    DEFAULT_NETNS_DIR,
    NetnsError,
    create_netns,
    delete_netns,
    is_netns,
    netns_path,
    read_sysctl,
    run_in_netns,
    write_sysctl,
)
from podnet.netlink._rtnl import LinkInfo, Rtnl, RtnlError
from podnet.netlink._tagged_routes import (
    GatewayRoute,
    RouteLookup,
    delete_route,
    lookup_route,
    replace_route,
    routes_with_proto,
)
from podnet.netlink._vxlan import (
    VXLAN_PORT,
    VxlanAttrs,
    VxlanSpec,
    ensure_sole_address,
    ensure_vxlan,
    ipv4_addresses,
    read_vxlan,
    vxlan_incompatibility,
)

__all__ = [
    "bring_up_loopback",
    "DEFAULT_NETNS_DIR",
    "FdbEntry",
    "GatewayRoute",
    "LinkInfo",
    "Neighbour",
    "NetnsError",
    "RouteLookup",
    "Rtnl",
    "RtnlError",
    "VXLAN_PORT",
    "VxlanAttrs",
    "VxlanSpec",
    "add_address",
    "add_default_route",
    "create_bridge",
    "create_netns",
    "create_veth",
    "delete_netns",
    "delete_route",
    "ensure_sole_address",
    "ensure_vxlan",
    "fdb_delete",
    "fdb_entries",
    "fdb_replace",
    "ipv4_addresses",
    "is_netns",
    "lookup_route",
    "neigh_delete",
    "neigh_replace",
    "netns_path",
    "permanent_neighbours",
    "read_sysctl",
    "read_vxlan",
    "replace_route",
    "routes_with_proto",
    "run_in_netns",
    "set_loopback_up",
    "set_master",
    "vxlan_incompatibility",
    "write_sysctl",
]
