"""The libc calls os lacks in Python 3.11 (setns, unshare, mount, umount2, fstatfs, and
an ioctl answering an int), made through ctypes' C core `_ctypes`, as ctypes makes them.

Why not the `ctypes` package: it builds all its C types and helpers at import, ~5
million instructions that a plugin run in-process (the launcher's fallback execs one
interpreter per pod) would pay on every pod for a setns(). Each function here is what
`ctypes.CDLL(None, use_errno=True).<name>` is: a C function returning int, looked up in
the process's own symbols, with errno saved for get_errno(); its arguments convert as
ctypes converts them without argtypes (int, bytes, None, a buffer).
"""

from __future__ import annotations

import _ctypes

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from collections.abc import Callable

    _IntData = _ctypes._SimpleCData[int]
    _BytesData = _ctypes._SimpleCData[bytes]
else:  # not subscriptable at run time (typeshed's generics)
    _IntData = _BytesData = _ctypes._SimpleCData


class _CInt(_IntData):  # ctypes.c_int
    _type_ = "i"


class _CLong(_IntData):  # ctypes.c_long
    _type_ = "l"


class _CChar(_BytesData):  # ctypes.c_char
    _type_ = "c"


class _LibcFunction(_ctypes.CFuncPtr):  # ctypes.CDLL(None, use_errno=True)._FuncPtr
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _CInt


# dlopen(NULL), as ctypes.CDLL(None): the process's own symbols, libc's among them.
_PROCESS = _ctypes.dlopen(None)  # type: ignore[arg-type]  # typeshed omits None


def _libc_function(name: str) -> Callable[..., int]:
    function: Callable[..., int] = _LibcFunction(_ctypes.dlsym(_PROCESS, name))
    return function


setns = _libc_function("setns")
unshare = _libc_function("unshare")
mount = _libc_function("mount")
umount2 = _libc_function("umount2")
ioctl = _libc_function("ioctl")
_fstatfs = _libc_function("fstatfs")
get_errno = _ctypes.get_errno

_STATFS_SIZE = 256  # struct statfs is 120 bytes on 64-bit Linux; f_type comes first


class _StatfsBuffer(_ctypes.Array[_CChar]):  # ctypes.create_string_buffer(_STATFS_SIZE)
    _type_ = _CChar
    _length_ = _STATFS_SIZE


def fstatfs_type(fd: int) -> int:
    """fstatfs(fd)'s f_type (32 bits, as the filesystem magics are); -1 when the call
    failed, errno in get_errno()."""
    buffer = _StatfsBuffer()
    if _fstatfs(fd, buffer) != 0:
        return -1
    return int(_CLong.from_buffer(buffer).value) & 0xFFFFFFFF


__all__ = ["fstatfs_type", "get_errno", "ioctl", "mount", "setns", "umount2", "unshare"]
