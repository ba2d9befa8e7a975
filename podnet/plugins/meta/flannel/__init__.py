"""flannel: the meta plugin that turns the node agent's subnet.env into a bridge +
host-local config and delegates to it, as flannel-io/cni-plugin does."""

from podnet.cni import Plugin
from podnet.plugins.meta.flannel._config import (
    DEFAULT_DATA_DIR,
    build_delegate,
    go_json,
    load_flannel_config,
)
from podnet.plugins.meta.flannel._scratch import ScratchDir
from podnet.plugins.meta.flannel._subnet_env import (
    NOT_WRITTEN,
    SubnetEnv,
    load_subnet_env,
    parse_subnet_env,
)
from podnet.plugins.meta.flannel._verbs import add, check, delete, gc, status

PLUGIN = Plugin(name="flannel", add=add, delete=delete, check=check, gc=gc, status=status)

__all__ = [
    "SubnetEnv",
    "DEFAULT_DATA_DIR",
    "NOT_WRITTEN",
    "PLUGIN",
    "ScratchDir",
    "build_delegate",
    "go_json",
    "load_flannel_config",
    "load_subnet_env",
    "parse_subnet_env",
]
