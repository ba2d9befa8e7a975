"""The only place that touches netlink and network namespaces.

pyroute2 is imported lazily (it costs ~120 ms), and a socket for another namespace is
created in a thread that entered it (see _netns), never through pyroute2's forking
`IPRoute(netns=...)`, which crashes grpc clients in the same process.
"""

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

__all__ = [
    "DEFAULT_NETNS_DIR",
    "NetnsError",
    "create_netns",
    "delete_netns",
    "is_netns",
    "netns_path",
    "read_sysctl",
    "run_in_netns",
    "write_sysctl",
]
