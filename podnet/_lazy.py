"""A package's exports, each imported from its private module on first use (PEP 562).

A CNI executable that runs its plugin in-process (the launcher's fallback while the agent
restarts) pays for every module it imports, once per pod: a package whose __init__
imported all its modules made every plugin import all of them. With the exports listed
per module, `from podnet.netlink import get_link` imports _links (and what it needs), not
VXLAN, FDB or nftables. The package keeps its typed imports under TYPE_CHECKING, so mypy
and import-linter see the same names as before.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from types import ModuleType


def load_export(package: str, exports: dict[str, tuple[str, ...]], name: str) -> object:
    """The package's export `name`, imported now from the module listing it and kept in
    the package's namespace, so the next lookup does not come here again."""
    for module, names in exports.items():
        if name in names:
            value: object = getattr(import_module(module), name)
            setattr(sys.modules[package], name, value)
            return value
    raise AttributeError(f"module {package!r} has no attribute {name!r}")


def import_module(name: str) -> ModuleType:
    """importlib.import_module(name) for an absolute name, without importing importlib
    (and the warnings module it imports): ~1 million instructions in-process."""
    __import__(name)
    return sys.modules[name]


__all__ = ["import_module", "load_export"]
