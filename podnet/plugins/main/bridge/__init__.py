"""The bridge plugin: a veth pair per pod, one end in the pod and one attached to a
Linux bridge on the node, the pod's address from a delegated IPAM plugin."""

from podnet.cni import Plugin, Request, Result
from podnet.plugins.main.bridge._config import DEFAULT_BRIDGE, parse_config

# Each verb imports its module when it first runs: a plugin run in-process (the
# launcher's fallback) runs one verb per process, and ADD's modules are not DEL's (about
# half a million instructions per module imported).


def _add_verb(request: Request) -> Result:
    from podnet.plugins.main.bridge._add import add

    return add(request)


def _delete_verb(request: Request) -> None:
    from podnet.plugins.main.bridge._delete import delete

    delete(request)


def _check_verb(request: Request) -> None:
    from podnet.plugins.main.bridge._check import check

    check(request)


def _gc_verb(request: Request) -> None:
    from podnet.plugins.main.bridge._delete import gc

    gc(request)


def _status_verb(request: Request) -> None:
    from podnet.plugins.main.bridge._check import status

    status(request)


PLUGIN = Plugin(
    name="bridge",
    add=_add_verb,
    delete=_delete_verb,
    check=_check_verb,
    gc=_gc_verb,
    status=_status_verb,
)

__all__ = [
    "DEFAULT_BRIDGE",
    "PLUGIN",
    "parse_config",
]
