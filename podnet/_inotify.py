"""inotify(7) through ctypes, for the processes that live on (the agent's reservation
cache, the sqlite store's watches): what changed under a directory, as the kernel queues
it, instead of looking again and again. Not for the pod path (it imports ctypes)."""

from __future__ import annotations

import ctypes
import errno
import os
import struct

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000

_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (name follows)
_READ_SIZE = 65536


class Event:
    __slots__ = ("wd", "mask", "name")

    def __init__(self, wd: int, mask: int, name: str) -> None:
        self.wd = wd
        self.mask = mask
        self.name = name  # "" for an event of the watched directory itself


class Inotify:
    """One inotify instance, non-blocking; OSError from the constructor where the kernel
    or its limits (fs.inotify.max_user_instances) refuse one."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self.fd: int | None = fd

    def fileno(self) -> int:
        assert self.fd is not None, "closed"
        return self.fd

    def add_watch(self, path: str, mask: int) -> int:
        """The watch descriptor (the same for the same inode); OSError (ENOSPC: out of
        watches, ENOENT, ENOTDIR with IN_ONLYDIR) when refused."""
        wd = int(self._libc.inotify_add_watch(self.fileno(), os.fsencode(path), mask))
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_add_watch {path}: {os.strerror(code)}")
        return wd

    def rm_watch(self, wd: int) -> None:
        """Drop a watch; one the kernel dropped already (its inode is gone) is fine."""
        self._libc.inotify_rm_watch(self.fileno(), wd)

    def read(self) -> list[Event]:
        """Every event queued so far (none: an empty list, at once)."""
        events: list[Event] = []
        while True:
            try:
                data = os.read(self.fileno(), _READ_SIZE)
            except BlockingIOError:
                return events
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _, length = _EVENT.unpack_from(data, offset)
                start = offset + _EVENT.size
                name = os.fsdecode(data[start : start + length].rstrip(b"\0"))
                events.append(Event(wd, mask, name))
                offset = start + length

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
