"""flannel's scratch dir: saved configs and the temp files of interrupted saves."""

from __future__ import annotations

import os
from pathlib import Path

from podnet.plugins.meta.flannel import ScratchDir


def test_debris_is_found_by_its_container_only(tmp_path: Path) -> None:
    scratch = ScratchDir(str(tmp_path))
    scratch.save("c1", b'{"type": "bridge"}')
    debris = [".tmp-c1~abcd1234", ".tmp-c1~x"]  # what a killed save of c1 leaves
    others = [".tmp-c10~abcd1234", ".tmp-c1.x~abcd", ".tmp-c1-2~ab", ".tmp-plain"]
    for name in debris + others:
        (tmp_path / name).write_bytes(b"{")
    assert scratch.container_ids() == ["c1"]

    scratch.remove_debris("c1")
    assert sorted(os.listdir(tmp_path)) == sorted(["c1", *others])
    scratch.remove_debris("gone")  # nothing of its own: nothing removed
    assert sorted(os.listdir(tmp_path)) == sorted(["c1", *others])
    ScratchDir(str(tmp_path / "missing")).remove_debris("c1")  # no dir yet: fine


def test_save_names_its_temp_file_after_the_container(tmp_path: Path, monkeypatch) -> None:
    seen = []
    real_rename = os.rename

    def spy(src: str, dst: str) -> None:
        seen.append(os.path.basename(src))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", spy)
    ScratchDir(str(tmp_path)).save("pod-7.a_b", b"{}")
    [temp] = seen
    assert temp.startswith(".tmp-pod-7.a_b~")
    assert os.listdir(tmp_path) == ["pod-7.a_b"]
