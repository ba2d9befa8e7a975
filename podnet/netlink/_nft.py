"""nftables in JSON, in the calling thread's network namespace.

A batch is one kernel transaction: either every command in it applies or none does.
Errors come back as text ("Could not process rule: No such file or directory"); the errno
is recovered from that text so callers can tell a missing object from a real failure.

Two ways to reach the kernel, the same JSON either way:
- libnftables (the library behind the `nft` command, which the nftables package
  installs), through ctypes: ~0.5 ms per batch, no process. A context opens its netlink
  socket in the namespace of the thread that creates it, so each thread keeps a context
  for the namespace it works in, reused by every later batch there. The library has
  global state of its own (one-time initialisation, xtables), so calls are serialised;
  the kernel applies nftables transactions one at a time anyway.
- `nft -j -f -` as a process (~5-25 ms per batch), when the library cannot be loaded.

Masquerade must not cost a process per pod (the reference bridge execs iptables several
times per pod); in the agent every pod's masquerade is a library call.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import threading

from podnet.netlink._netns import netns_id
from podnet.netlink._nft_error import NftError

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any

# Plugins may run with an empty PATH (`env -i`, some runtimes): look in sbin too.
_NFT_FALLBACKS = ("/usr/sbin/nft", "/sbin/nft")
_TIMEOUT = 30.0
# EINTR from nft means a netlink dump (the cache it fills before a command, or a `get`)
# saw the ruleset change under it (NLM_F_DUMP_INTR): nothing was committed, so the
# command is run again. Each attempt is ~0.1 ms; pods churning in the same namespace
# make it happen about once in a few hundred lookups.
_INTERRUPTED_ATTEMPTS = 20
_LIBRARY = "libnftables.so.1"
NFT_CTX_OUTPUT_JSON = 1 << 4  # JSON output; with it, input is read as JSON too (1.0.x)

_ERRNO_BY_TEXT = {
    os.strerror(code): code
    for code in (
        errno.ENOENT,
        errno.EEXIST,
        errno.EBUSY,
        errno.EPERM,
        errno.EINVAL,
        errno.ENOSPC,
        errno.EINTR,
    )
}


def _error(what: str, text: str, fallback: str) -> NftError:
    code = next((c for t, c in _ERRNO_BY_TEXT.items() if t in text), errno.EIO)
    lines = [line for line in text.splitlines() if line.strip()]
    return NftError(code, f"{what}: {lines[0] if lines else fallback}")


class Libnftables:
    """libnftables loaded through ctypes, with one context per (thread, namespace)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        ctx = ctypes.c_void_p
        lib.nft_ctx_new.restype = ctx
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_output_set_flags.argtypes = [ctx, ctypes.c_uint]
        lib.nft_ctx_buffer_output.argtypes = [ctx]
        lib.nft_ctx_buffer_error.argtypes = [ctx]
        lib.nft_run_cmd_from_buffer.argtypes = [ctx, ctypes.c_char_p]
        lib.nft_ctx_get_output_buffer.argtypes = [ctx]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctx]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_free.argtypes = [ctx]
        self._lib = lib
        self._contexts = threading.local()
        # Reentrant: replacing a thread's context frees the old one with the lock held.
        self._lock = threading.RLock()

    @classmethod
    def load(cls) -> Libnftables | None:
        try:
            return cls(ctypes.CDLL(_LIBRARY, use_errno=True))
        except (OSError, AttributeError):
            return None

    def _context(self) -> int:
        """The calling thread's context, for the namespace the thread is in now. A thread
        keeps one: moving to another namespace frees the old context (and its socket,
        which would keep that namespace alive)."""
        key = netns_id()
        held: _Context | None = getattr(self._contexts, "context", None)
        if held is None or held.netns != key:
            self._contexts.context = None
            held = self._contexts.context = _Context(self._lib, key, self._lock)
        return held.pointer

    def run(self, document: bytes, what: str) -> bytes:
        with self._lock:
            ctx = self._context()
            if self._lib.nft_run_cmd_from_buffer(ctx, document) != 0:
                error = self._lib.nft_ctx_get_error_buffer(ctx) or b""
                raise _error(what, error.decode(errors="replace"), "libnftables refused it")
            return bytes(self._lib.nft_ctx_get_output_buffer(ctx) or b"")


class _Context:
    """A libnftables context for one namespace, freed with the thread that holds it."""

    def __init__(self, lib: ctypes.CDLL, netns: tuple[int, int], lock: threading.RLock) -> None:
        pointer = lib.nft_ctx_new(0)
        if not pointer:
            raise NftError(errno.ENOMEM, "libnftables: cannot create a context")
        self._lib = lib
        self._lock = lock
        self.pointer = int(pointer)
        self.netns = netns
        lib.nft_ctx_output_set_flags(pointer, NFT_CTX_OUTPUT_JSON)
        lib.nft_ctx_buffer_output(pointer)
        lib.nft_ctx_buffer_error(pointer)

    def __del__(self) -> None:
        with self._lock:
            self._lib.nft_ctx_free(self.pointer)


_library: Libnftables | None = None
_library_loaded = False
_load_lock = threading.Lock()


def libnftables() -> Libnftables | None:
    """The library, loaded on first use; None where it cannot be (then `nft` is run)."""
    global _library, _library_loaded
    if not _library_loaded:
        with _load_lock:
            if not _library_loaded:
                _library = Libnftables.load()
                _library_loaded = True
    return _library


def _nft_path() -> str:
    import shutil

    found = shutil.which("nft")
    if found:
        return found
    return next((p for p in _NFT_FALLBACKS if os.access(p, os.X_OK)), "nft")


def _run_process(document: bytes, what: str, *, json_input: bool = True) -> bytes:
    import subprocess  # only where libnftables is missing

    try:
        proc = subprocess.run(
            [_nft_path(), *(["-j"] if json_input else []), "-f", "-"],
            input=document,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise NftError(errno.ENOENT, f"{what}: the nft command is not installed") from None
    except subprocess.TimeoutExpired:
        raise NftError(errno.ETIMEDOUT, f"{what}: nft timed out") from None
    if proc.returncode != 0:
        text = proc.stderr.decode(errors="replace")
        raise _error(what, text, f"exit status {proc.returncode}")
    return proc.stdout


def _run_once(document: bytes, what: str, *, json_input: bool) -> bytes:
    lib = libnftables()
    if lib is None:
        return _run_process(document, what, json_input=json_input)
    return lib.run(document, what)


def _run(document: bytes, what: str, *, json_input: bool = True) -> bytes:
    for _ in range(_INTERRUPTED_ATTEMPTS - 1):
        try:
            return _run_once(document, what, json_input=json_input)
        except NftError as exc:
            if exc.errno != errno.EINTR:
                raise
    return _run_once(document, what, json_input=json_input)


def nft_apply(commands: list[dict[str, Any]], *, what: str = "nft") -> None:
    """Apply JSON commands ({"add": {...}}, {"delete": {...}}, ...) as one transaction."""
    if not commands:
        return
    _run(json.dumps({"nftables": commands}).encode(), what)


def nft_list(what_to_list: dict[str, Any], *, what: str = "nft list") -> list[dict[str, Any]]:
    """A JSON list command ({"table": {"family": ..., "name": ...}}, {"tables": None}) as a
    list of objects, metainfo left out. A missing object raises NftError(ENOENT)."""
    out = _run(json.dumps({"nftables": [{"list": what_to_list}]}).encode(), what)
    try:
        items = json.loads(out).get("nftables", []) if out.strip() else []
    except ValueError as exc:
        raise NftError(errno.EIO, f"{what}: unreadable nft output: {exc}") from None
    return [item for item in items if "metainfo" not in item]


def nft_apply_text(script: str, *, what: str = "nft") -> None:
    """Apply commands in nft's text syntax as one transaction: for rules that carry
    expressions a user wrote in that syntax (portmap's conditionsV4/V6), which JSON
    cannot take as they are."""
    _run(script.encode(), what, json_input=False)


def nft_get_element(family: str, table: str, set_name: str, value: str, *, what: str) -> str:
    """One element of a set in nft's text form (with its comment, if any): a lookup of
    one key, where listing the set would print every element. The JSON syntax has no
    `get`, and the text syntax takes names only as bare words (podnet's are:
    letters, digits, "-", "_", "."). A missing table, set or element raises
    NftError(ENOENT)."""
    command = f"get element {family} {table} {set_name} {{ {value} }}\n"
    return _run(command.encode(), what, json_input=False).decode(errors="replace")
