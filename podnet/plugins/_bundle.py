"""install-cni's side of the fallback bundle (podnet._bundle): the code of every module a
plugin running in-process may import, in one file beside podnet's bytecode.

Which modules: those loaded by importing every module of every plugin (podnet/plugins/
main, meta and ipam: all verbs of all types) in a fresh interpreter started as the
fallback is (-I -S), recorded before anything else is imported there: the podnet.cni,
podnet.ipam and podnet.netlink modules the plugins use and the standard modules they all
import at their top level. A module the bundle lacks (one imported inside a function,
say) is still imported the usual way; one from site-packages is left out (the plugin
path uses none). The code is compiled without column tables (-X no_debug_ranges):
a smaller file, and a traceback still names file and line.
"""

from __future__ import annotations

import os
import subprocess
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

BUNDLE_NAME = f"in-process.{sys.implementation.cache_tag}.bundle"
# The plugins' packages, every module of which is imported to record what they load.
_PACKAGES = ("podnet/plugins/main", "podnet/plugins/meta", "podnet/plugins/ipam")
# (podnet, podnet._thin and podnet._bundle are imported before the bundle is read.)
_MODULES = ("podnet.cni", "podnet.plugins", "podnet.plugins._delegate")
_TIMEOUT = 120.0


def bundle_path(root: str) -> str:
    """Where the bundle of the podnet tree at `root` lives."""
    return os.path.join(root, "podnet", "__pycache__", BUNDLE_NAME)


def plugin_path_modules(root: str) -> list[str]:
    names = list(_MODULES)
    for package in _PACKAGES:
        for directory, subdirs, files in os.walk(os.path.join(root, package)):
            subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
            dotted = os.path.relpath(directory, root).replace(os.sep, ".")
            for file in sorted(files):
                if not file.endswith(".py"):
                    continue
                name = dotted if file == "__init__.py" else f"{dotted}.{file[:-3]}"
                names.append(name)
    return names


def bundle_is_current(path: str, root: str) -> bool:
    """The bundle at `path` was written by this interpreter, holds every podnet module of
    the plugin path, and no source it holds changed since."""
    from podnet._bundle import open_bundle

    try:
        fd, _, index = open_bundle(path)
    except (OSError, ValueError):
        return False
    os.close(fd)
    if any(name not in index for name in plugin_path_modules(root)):
        return False
    for origin, _, mtime_ns, size, _, _ in index.values():
        try:
            st = os.stat(origin)
        except OSError:
            return False
        if (st.st_mtime_ns, st.st_size) != (mtime_ns, size):
            return False
    return True


def write_bundle(root: str, sys_path: list[str]) -> str | None:
    """Write the bundle of the podnet tree at `root` (`sys_path`: the fallback's, root
    first) unless the one there is current; returns why it could not, or None."""
    path = bundle_path(root)
    if bundle_is_current(path, root):
        return None
    code = (
        "import sys\n"
        f"sys.path[:0] = {[root]!r}\n"
        f"sys.path += {sys_path[1:]!r}\n"
        f"for name in {plugin_path_modules(root)!r}:\n"
        "    __import__(name)\n"
        "loaded = [(n, getattr(m, '__spec__', None)) for n, m in list(sys.modules.items())]\n"
        f"from {__name__} import write_from_specs\n"
        f"write_from_specs({path!r}, loaded, {sys_path[1:]!r})\n"
    )
    argv = [sys.executable, "-I", "-S", "-X", "no_debug_ranges", "-c", code]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot write {path}: {exc}"
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return f"cannot write {path}: {lines[-1] if lines else proc.returncode}"
    return None


def write_from_specs(path: str, loaded: Iterable[tuple[str, object]], excluded: list[str]) -> None:
    """Compile the source of each loaded module (not from `excluded` directories) and
    write the bundle at `path` atomically. Runs in the recording interpreter."""
    import marshal

    from podnet._bundle import pack
    from podnet.cni import atomic_write

    index: dict[str, tuple[str, bool, int, int]] = {}
    codes: dict[str, bytes] = {}
    for name, spec in loaded:
        origin = getattr(spec, "origin", None)
        if not isinstance(origin, str) or not origin.endswith(".py"):
            continue  # built in, frozen, or an extension module
        if any(origin.startswith(directory + os.sep) for directory in excluded):
            continue
        with open(origin, "rb") as handle:
            source = handle.read()
            st = os.fstat(handle.fileno())
        is_package = getattr(spec, "submodule_search_locations", None) is not None
        index[name] = (origin, is_package, st.st_mtime_ns, st.st_size)
        codes[name] = marshal.dumps(compile(source, origin, "exec", dont_inherit=True))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, pack(index, codes), mode=0o644, durable=False)
