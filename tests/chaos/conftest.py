"""The chaos scenarios reuse the plugin tests' fixtures: podnet's installed executables,
node and pod namespaces (created and always deleted), a node set up for the flannel chain."""

from tests.plugins.flannel.conftest import chain
from tests.plugins.host_local.conftest import bin_dir, ours
from tests.plugins.main.conftest import cni_bin, netns_factory, node_netns, pod_netns

__all__ = ["bin_dir", "chain", "cni_bin", "netns_factory", "node_netns", "ours", "pod_netns"]
