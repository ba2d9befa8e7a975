"""install-cni's fallback bundle (podnet.plugins._bundle): what it holds, and that it is
rewritten when a source changed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from podnet._bundle import open_bundle
from podnet.plugins._bundle import bundle_is_current, bundle_path, write_bundle
from podnet.plugins._install import _repo_root, _sys_path


def index_of(path: str) -> dict[str, tuple[str, bool, int, int, int, int]]:
    fd, _, index = open_bundle(path)
    os.close(fd)
    return index


def copy_of_the_tree(tmp_path: Path) -> str:
    root = tmp_path / "tree"
    shutil.copytree(
        Path(_repo_root()) / "podnet", root / "podnet", ignore=shutil.ignore_patterns("__pycache__")
    )
    return str(root)


def test_the_bundle_holds_the_plugin_path_and_nothing_from_site_packages(tmp_path: Path) -> None:
    root = copy_of_the_tree(tmp_path)
    assert write_bundle(root, [root, *_sys_path()[1:]]) is None
    index = index_of(bundle_path(root))
    for name in [
        "podnet.cni",
        "podnet.plugins.meta.flannel",
        "podnet.plugins.main.bridge._add",
        "podnet.plugins.main.bridge._delete",
        "podnet.plugins.ipam.host_local._store",
        "podnet.netlink._links",
        "ipaddress",
    ]:
        assert name in index, name
    site_packages = _sys_path()[1]
    assert [n for n, e in index.items() if e[0].startswith(site_packages + os.sep)] == []
    assert [n for n in index if n.startswith("podnet") and not index[n][0].startswith(root)] == []
    assert "podnet.plugins._install" not in index  # install-cni's own: no plugin imports it


def test_a_changed_source_makes_install_write_the_bundle_again(tmp_path: Path) -> None:
    root = copy_of_the_tree(tmp_path)
    sys_path = [root, *_sys_path()[1:]]
    assert write_bundle(root, sys_path) is None
    path = bundle_path(root)
    assert bundle_is_current(path, root)
    first = os.stat(path).st_ino
    assert write_bundle(root, sys_path) is None
    assert os.stat(path).st_ino == first  # current: left alone
    module = Path(root) / "podnet" / "plugins" / "main" / "bridge" / "_add.py"
    module.write_text(module.read_text() + "\n# changed\n")
    assert not bundle_is_current(path, root)
    assert write_bundle(root, sys_path) is None
    assert bundle_is_current(path, root)
    assert index_of(path)["podnet.plugins.main.bridge._add"][3] == module.stat().st_size


def test_install_names_the_bundle_in_the_fallback(tmp_path: Path) -> None:
    from podnet.plugins import install_executables

    (flannel, *_) = install_executables(str(tmp_path / "bin"), ["flannel"], compiled=False)
    assert repr(bundle_path(_repo_root())) in Path(flannel).read_text()
    assert bundle_is_current(bundle_path(_repo_root()), _repo_root())
