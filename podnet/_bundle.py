"""The in-process fallback's modules from one file instead of one .pyc each.

A plugin that runs in-process (the launcher's fallback while the agent restarts) imports
about a hundred modules, once per pod. Found the usual way, each costs importlib's path
search in Python bytecode, a stat per sys.path entry, and an open, fstat, read and close
of its .pyc: about a sixth of the whole ADD. install-cni writes the code of those modules
into one file (podnet.plugins._bundle); the fallback reads it once and serves imports
from it, first on sys.meta_path.

Never wrong, only faster: a module whose source file changed since the bundle was
written (mtime or size, the check a .pyc gets) or that the bundle lacks is imported the
usual way; a bundle that is missing, unreadable, or written by another interpreter is not
used at all. Only built-in modules are imported here (marshal, posix, sys), before any
other import.
"""

import marshal
import posix
import sys

# Not typing's TYPE_CHECKING, nor `from __future__ import annotations` (an import too):
# this module is read before the bundle, so it imports nothing but built-in modules.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

# The bundle's layout: MAGIC, the index's length (4 bytes, big-endian), the index
# (marshal of (interpreter_tag(), {module name: (origin, is package, source mtime_ns,
# source size, code offset from the index's end, code length)})), then each module's
# marshalled code. The index is read at start, a module's code only when it is imported
# (pread), so the modules a verb does not import cost nothing.
MAGIC = b"PNBUNDL1"
_HEAD = len(MAGIC) + 4
_FIRST_READ = 1 << 16


class BundleFinder:
    """A meta path finder and loader for the modules of one bundle."""

    def __init__(
        self, fd: int, code_start: int, index: dict[str, tuple[str, bool, int, int, int, int]]
    ) -> None:
        self._fd = fd  # open for the life of the process: it is short
        self._code_start = code_start
        self._index = index

    def find_spec(
        self, name: str, path: "Sequence[str] | None" = None, target: "ModuleType | None" = None
    ) -> "ModuleSpec | None":
        entry = self._index.get(name)
        if entry is None:
            return None
        origin, is_package, mtime_ns, size = entry[:4]
        try:
            st = posix.stat(origin)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None  # changed since install-cni: the usual import compiles it
        # importlib.machinery's ModuleSpec, without importing importlib; a loader only
        # needs create_module and exec_module (typeshed asks for an importlib.abc.Loader).
        spec_class: type[ModuleSpec] = sys.modules["_frozen_importlib"].ModuleSpec
        spec = spec_class(name, self, origin=origin, is_package=is_package)  # type: ignore[arg-type]
        if is_package:
            spec.submodule_search_locations = [origin.rpartition("/")[0]]
        spec.has_location = True  # sets __file__
        return spec

    def create_module(self, spec: "ModuleSpec") -> None:
        return None  # the default module object

    def exec_module(self, module: "ModuleType") -> None:
        name = module.__name__
        offset, length = self._index[name][4:]
        code = marshal.loads(posix.pread(self._fd, length, self._code_start + offset))
        exec(code, module.__dict__)


def interpreter_tag() -> str:
    """What must match between the interpreter that wrote a bundle and the one reading it."""
    magic = sys.modules["_frozen_importlib_external"].MAGIC_NUMBER
    return f"podnet-bundle {sys.implementation.cache_tag} {magic.hex()}"


def pack(index: dict[str, tuple[str, bool, int, int]], codes: dict[str, bytes]) -> bytes:
    """A bundle of the modules in `index` (origin, is package, source mtime_ns and size)
    whose marshalled code is in `codes`."""
    full: dict[str, tuple[str, bool, int, int, int, int]] = {}
    offset = 0  # from the end of the index
    for name, fields in index.items():
        full[name] = (*fields, offset, len(codes[name]))
        offset += len(codes[name])
    head = marshal.dumps((interpreter_tag(), full))
    return MAGIC + len(head).to_bytes(4, "big") + head + b"".join(codes[n] for n in full)


def read_index(fd: int) -> tuple[int, dict[str, tuple[str, bool, int, int, int, int]]] | None:
    """Where the code starts and the index of the bundle open at `fd`, or None when it
    is not a bundle of this interpreter."""
    first = posix.pread(fd, _FIRST_READ, 0)
    if first[: len(MAGIC)] != MAGIC or len(first) < _HEAD:
        return None
    length = int.from_bytes(first[len(MAGIC) : _HEAD], "big")
    head = first[_HEAD : _HEAD + length]
    if len(head) < length:
        head = posix.pread(fd, length, _HEAD)
    try:
        tag, index = marshal.loads(head)
    except (EOFError, ValueError, TypeError):
        return None
    if tag != interpreter_tag() or not isinstance(index, dict):
        return None
    code_start = _HEAD + length
    size = posix.fstat(fd).st_size
    if any(code_start + entry[4] + entry[5] > size for entry in index.values()):
        return None  # cut short: no module of it is trusted
    return code_start, index


def open_bundle(path: str) -> tuple[int, int, dict[str, tuple[str, bool, int, int, int, int]]]:
    """(an open descriptor, where the code starts, the index) of the bundle at `path`;
    OSError when it cannot be read, ValueError when it is not a bundle of this interpreter."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        found = read_index(fd)
    except BaseException:
        posix.close(fd)
        raise
    if found is None:
        posix.close(fd)
        raise ValueError(f"{path} is not a bundle of this interpreter")
    return fd, *found


def use_bundle(path: str) -> bool:
    """Serve imports from the bundle at `path` from now on; False when it cannot be used
    (then nothing changed)."""
    try:
        fd, code_start, index = open_bundle(path)
    except (OSError, ValueError):
        return False
    sys.meta_path.insert(0, BundleFinder(fd, code_start, index))
    return True
