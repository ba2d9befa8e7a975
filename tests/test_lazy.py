"""podnet.cni and podnet.netlink import their modules on first use (podnet._lazy): every
name they export must still resolve, to the object of the module that defines it, and a
name they do not export must fail as a missing attribute does."""

from __future__ import annotations

import importlib
import subprocess
import sys
from types import ModuleType

import pytest

import podnet.cni
import podnet.netlink

LAZY_PACKAGES = [podnet.cni, podnet.netlink]


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda p: p.__name__)
def test_every_export_is_listed_once_and_resolves(package: ModuleType) -> None:
    table: dict[str, tuple[str, ...]] = package._EXPORTS
    listed = [name for names in table.values() for name in names]
    assert sorted(listed) == sorted(set(listed)) == sorted(package.__all__)
    for module, names in table.items():
        for name in names:
            assert getattr(package, name) is getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("package", LAZY_PACKAGES, ids=lambda p: p.__name__)
def test_an_unknown_name_is_an_attribute_error(package: ModuleType) -> None:
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018


def test_a_name_imports_only_its_module() -> None:
    code = (
        "import sys; from podnet.netlink import get_link; "
        "print(' '.join(m for m in sys.modules if m.startswith('podnet.netlink.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert "podnet.netlink._links" in out
    assert "podnet.netlink._vxlan" not in out
    assert "podnet.netlink._nft" not in out
