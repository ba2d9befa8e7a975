"""The fallback bundle (podnet._bundle): modules served from one file, never stale code.
Each case runs in a fresh interpreter (-I -S, as the fallback does), since a bundle goes
first on sys.meta_path for the rest of the process."""

from __future__ import annotations

import marshal
import subprocess
import sys
from pathlib import Path

import pytest

import podnet
import podnet._bundle
from podnet._bundle import pack

ROOT = str(Path(podnet.__file__).resolve().parents[1])  # where podnet is imported from
SOURCES = {"pkg/__init__.py": "", "pkg/mod.py": "VALUE = 1\n"}


def make_bundle(root: Path, path: Path) -> None:
    """A package `pkg` with a module `mod` at `root`, and their bundle at `path`."""
    index: dict[str, tuple[str, bool, int, int]] = {}
    codes: dict[str, bytes] = {}
    for relative, source in SOURCES.items():
        file = root / relative
        file.parent.mkdir(exist_ok=True)
        file.write_text(source)
        st = file.stat()
        name = relative.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        index[name] = (str(file), relative.endswith("__init__.py"), st.st_mtime_ns, st.st_size)
        codes[name] = marshal.dumps(compile(source, str(file), "exec"))
    path.write_bytes(pack(index, codes))


def import_with(root: Path, bundle: Path) -> list[str]:
    """(use_bundle's answer, pkg.mod.VALUE, the loader's class, __file__) in a fresh
    interpreter that imports pkg.mod after use_bundle."""
    code = (
        "import sys\n"
        f"sys.path[:0] = {[ROOT, str(root)]!r}\n"
        "from podnet._bundle import use_bundle\n"
        f"used = use_bundle({str(bundle)!r})\n"
        "import pkg.mod\n"
        "print(used, pkg.mod.VALUE, type(pkg.mod.__spec__.loader).__name__, pkg.mod.__file__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_modules_come_from_the_bundle(tmp_path: Path) -> None:
    make_bundle(tmp_path, tmp_path / "b")
    assert import_with(tmp_path, tmp_path / "b") == [
        "True",
        "1",
        "BundleFinder",
        str(tmp_path / "pkg" / "mod.py"),
    ]


def test_a_source_changed_since_is_imported_the_usual_way(tmp_path: Path) -> None:
    make_bundle(tmp_path, tmp_path / "b")
    (tmp_path / "pkg" / "mod.py").write_text("VALUE = 22\n")
    used, value, loader, _ = import_with(tmp_path, tmp_path / "b")
    assert (used, value, loader) == ("True", "22", "SourceFileLoader")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"not a bundle" + data, id="not-a-bundle"),
        pytest.param(lambda data: data[:-5], id="cut-short"),
        pytest.param(lambda data: data[:20], id="index-cut-short"),
    ],
)
def test_a_damaged_bundle_is_not_used(tmp_path: Path, damage: object) -> None:
    make_bundle(tmp_path, tmp_path / "b")
    bundle = tmp_path / "b"
    bundle.write_bytes(damage(bundle.read_bytes()))  # type: ignore[operator]
    used, value, loader, _ = import_with(tmp_path, bundle)
    assert (used, value, loader) == ("False", "1", "SourceFileLoader")


def test_a_missing_bundle_is_not_used(tmp_path: Path) -> None:
    make_bundle(tmp_path, tmp_path / "b")
    used, value, loader, _ = import_with(tmp_path, tmp_path / "absent")
    assert (used, value, loader) == ("False", "1", "SourceFileLoader")


def test_a_bundle_of_another_interpreter_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(podnet._bundle, "interpreter_tag", lambda: "podnet-bundle cpython-399 x")
    make_bundle(tmp_path, tmp_path / "b")
    used, _, loader, _ = import_with(tmp_path, tmp_path / "b")
    assert (used, loader) == ("False", "SourceFileLoader")


def test_the_bundle_read_at_start_imports_only_built_in_modules() -> None:
    code = (
        "import sys\n"
        f"sys.path[:0] = {[ROOT]!r}\n"
        "before = set(sys.modules)\n"
        "import podnet._bundle\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert sorted(proc.stdout.split()) == ["podnet", "podnet._bundle"]
