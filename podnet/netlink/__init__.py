"""The only place that touches netlink and network namespaces.

pyroute2 is imported lazily (it costs ~120 ms), and a socket for another namespace is
created in a thread that entered it (see _netns), never through pyroute2's forking
`IPRoute(netns=...)`, which crashes grpc clients in the same process.
"""

from __future__ import annotations

from podnet._lazy import load_export

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from podnet.netlink._addrs import add_address, delete_address, list_addresses
    from podnet.netlink._conntrack import delete_conntrack_entries
    from podnet.netlink._lab_links import (
        add_default_route,
        create_bridge_up,
        create_veth_pair,
        set_loopback_up,
        set_master,
    )
    from podnet.netlink._links import (
        Link,
        add_port_vlan,
        create_bridge,
        create_veth,
        delete_link,
        delete_link_named,
        delete_port_vlan,
        find_link,
        find_link_by_index,
        get_link,
        get_link_by_index,
        list_links,
        port_vlans,
        set_bridge_port,
        set_link,
        set_promisc,
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
        OWN_NETNS,
        NetnsError,
        NotANetns,
        create_netns,
        delete_netns,
        is_netns,
        netns_id,
        netns_path,
        open_netns,
        read_sysctl,
        run_in_netns,
        write_sysctl,
    )
    from podnet.netlink._nft import (
        nft_apply,
        nft_apply_text,
        nft_get_element,
        nft_list,
    )
    from podnet.netlink._nft_error import NftError
    from podnet.netlink._routes import add_route, list_routes
    from podnet.netlink._rtnl import LinkNotFound, NetlinkError, Rtnl, RtnlError, open_rtnl
    from podnet.netlink._sysctl import set_sysctls
    from podnet.netlink._tagged_routes import (
        GatewayRoute,
        delete_route,
        lookup_route,
        replace_route,
        routes_with_proto,
    )
    from podnet.netlink._vxlan import (
        VXLAN_PORT,
        VxlanSpec,
        ensure_sole_address,
        ensure_vxlan,
        ipv4_addresses,
        read_vxlan,
    )

# name -> the private module that holds it, imported on first use (see podnet._lazy)
_EXPORTS: dict[str, tuple[str, ...]] = {
    "podnet.netlink._addrs": ("add_address", "delete_address", "list_addresses"),
    "podnet.netlink._conntrack": ("delete_conntrack_entries",),
    "podnet.netlink._lab_links": (
        "add_default_route",
        "create_bridge_up",
        "create_veth_pair",
        "set_loopback_up",
        "set_master",
    ),
    "podnet.netlink._links": (
        "Link",
        "add_port_vlan",
        "create_bridge",
        "create_veth",
        "delete_link",
        "delete_link_named",
        "delete_port_vlan",
        "find_link",
        "find_link_by_index",
        "get_link",
        "get_link_by_index",
        "list_links",
        "port_vlans",
        "set_bridge_port",
        "set_link",
        "set_promisc",
    ),
    "podnet.netlink._loopback": ("bring_up_loopback",),
    "podnet.netlink._neigh": (
        "FdbEntry",
        "Neighbour",
        "fdb_delete",
        "fdb_entries",
        "fdb_replace",
        "neigh_delete",
        "neigh_replace",
        "permanent_neighbours",
    ),
    "podnet.netlink._netns": (
        "DEFAULT_NETNS_DIR",
        "OWN_NETNS",
        "NetnsError",
        "NotANetns",
        "create_netns",
        "delete_netns",
        "is_netns",
        "netns_id",
        "netns_path",
        "open_netns",
        "read_sysctl",
        "run_in_netns",
        "write_sysctl",
    ),
    "podnet.netlink._nft": (
        "nft_apply",
        "nft_apply_text",
        "nft_get_element",
        "nft_list",
    ),
    "podnet.netlink._nft_error": ("NftError",),
    "podnet.netlink._routes": ("add_route", "list_routes"),
    "podnet.netlink._rtnl": ("LinkNotFound", "NetlinkError", "Rtnl", "RtnlError", "open_rtnl"),
    "podnet.netlink._sysctl": ("set_sysctls",),
    "podnet.netlink._tagged_routes": (
        "GatewayRoute",
        "delete_route",
        "lookup_route",
        "replace_route",
        "routes_with_proto",
    ),
    "podnet.netlink._vxlan": (
        "VXLAN_PORT",
        "VxlanSpec",
        "ensure_sole_address",
        "ensure_vxlan",
        "ipv4_addresses",
        "read_vxlan",
    ),
}


def __getattr__(name: str) -> object:
    return load_export(__name__, _EXPORTS, name)


__all__ = [
    "DEFAULT_NETNS_DIR",
    "VXLAN_PORT",
    "FdbEntry",
    "GatewayRoute",
    "Link",
    "LinkNotFound",
    "Neighbour",
    "NetlinkError",
    "NetnsError",
    "NotANetns",
    "NftError",
    "OWN_NETNS",
    "Rtnl",
    "RtnlError",
    "VxlanSpec",
    "add_address",
    "add_default_route",
    "add_port_vlan",
    "add_route",
    "bring_up_loopback",
    "create_bridge",
    "create_bridge_up",
    "create_netns",
    "create_veth",
    "create_veth_pair",
    "delete_address",
    "delete_conntrack_entries",
    "delete_link",
    "delete_link_named",
    "delete_netns",
    "delete_port_vlan",
    "delete_route",
    "ensure_sole_address",
    "ensure_vxlan",
    "fdb_delete",
    "fdb_entries",
    "fdb_replace",
    "find_link",
    "find_link_by_index",
    "get_link",
    "get_link_by_index",
    "ipv4_addresses",
    "is_netns",
    "list_addresses",
    "list_links",
    "list_routes",
    "lookup_route",
    "neigh_delete",
    "neigh_replace",
    "netns_id",
    "netns_path",
    "open_netns",
    "nft_apply",
    "nft_apply_text",
    "nft_get_element",
    "nft_list",
    "open_rtnl",
    "permanent_neighbours",
    "port_vlans",
    "read_sysctl",
    "read_vxlan",
    "replace_route",
    "routes_with_proto",
    "run_in_netns",
    "set_bridge_port",
    "set_link",
    "set_loopback_up",
    "set_master",
    "set_promisc",
    "set_sysctls",
    "write_sysctl",
]
