"""The sandbox driver's record of the pods it started (OwnedPods): one file per pod on
disk, read back by the next driver, and a list kept by an older driver taken over."""

from __future__ import annotations

import json
import os
from pathlib import Path

from podnet.lab._driver import OwnedPods


def test_owned_pods_survive_a_restart(tmp_path: Path) -> None:
    owned = OwnedPods(str(tmp_path / "driver-pods"))
    assert owned.keys() == set()
    owned.add("default/web")
    owned.add("kube-system/dns.1")
    owned.add("default/web")  # twice is once
    owned.discard("default/gone")  # never owned: nothing to do
    assert OwnedPods(str(tmp_path / "driver-pods")).keys() == {"default/web", "kube-system/dns.1"}
    owned.discard("default/web")
    assert OwnedPods(str(tmp_path / "driver-pods")).keys() == {"kube-system/dns.1"}
    assert os.listdir(tmp_path / "driver-pods") == ["kube-system%2Fdns.1"]


def test_an_older_driver_s_list_is_taken_over(tmp_path: Path) -> None:
    (tmp_path / "driver-pods.json").write_text(json.dumps(["default/a", "default/b"]))
    owned = OwnedPods(str(tmp_path / "driver-pods"))
    assert owned.keys() == {"default/a", "default/b"}
    assert not (tmp_path / "driver-pods.json").exists()
    assert OwnedPods(str(tmp_path / "driver-pods")).keys() == {"default/a", "default/b"}
