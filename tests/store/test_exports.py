"""Each package's __all__ names exactly what it exports."""

from __future__ import annotations

import importlib
import types

import pytest


@pytest.mark.parametrize(
    "package", ["podnet.store", "podnet.nodeipam", "podnet.cri", "podnet.agent"]
)
def test_all_matches_the_public_names(package: str) -> None:
    module = importlib.import_module(package)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(module.__all__) == public
    assert len(module.__all__) == len(set(module.__all__))
