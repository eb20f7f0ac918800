"""One pseudo-terminal with a stable symlink: the wire between a simulated modem and a client.

Linux PTY semantics this module relies on (and the client side must know):

* We keep our own copy of the slave fd open for as long as the port is "plugged". Without it,
  the master reports EIO/POLLHUP whenever no client has the slave open, which would make
  ``add_reader`` spin. With it, clients may open/close/reopen the port freely.
* Unplug closes the master (and our slave copy) and removes the symlink. A client still holding
  the old slave then sees, with pyserial 3.5 on Linux: ``read()`` → ``SerialException('device
  reports readiness to read but returned no data ...')`` (select says readable, read returns
  0 bytes); ``write()`` → ``SerialException('write failed: [Errno 5] Input/output error')``;
  ``in_waiting`` → ``OSError(EIO)``; pyserial-asyncio-fast → ``connection_lost(SerialException)``
  and the reader raises. Opening the stable path fails with ``ENOENT`` until replug.
* Replug opens a new PTY (a new ``/dev/pts/N``) and atomically re-points the same symlink.
* Output the client never reads is buffered by the kernel, then by us up to ``MAX_PENDING``
  bytes; beyond that, output is dropped (like a modem whose host is not reading). pyserial's
  ``open()`` flushes the kernel's input queue, but bytes we still hold are delivered after it,
  so a client should sync (``AT`` until ``OK``) after opening rather than trust the first line.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import tty
from collections.abc import Callable
from pathlib import Path

MAX_PENDING = 64 * 1024


class PtyPort:
    """A raw-mode PTY pair whose slave is reachable through ``link`` (a stable symlink)."""

    def __init__(self, link: Path, on_data: Callable[[bytes], None]) -> None:
        self.link = link
        self._on_data = on_data
        self._master: int | None = None
        self._slave: int | None = None
        self._pending = bytearray()
        self._writer_armed = False
        self.slave_name: str | None = None
        self.dropped = 0

    @property
    def is_open(self) -> bool:
        """True while plugged."""
        return self._master is not None

    def open(self) -> None:
        """Create the PTY, set it raw, point the symlink at it and start reading."""
        if self._master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.slave_name = os.ttyname(slave)
        self._master, self._slave = master, slave
        self._pending.clear()
        self.link.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self.slave_name)
        tmp.replace(self.link)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def close(self) -> None:
        """Unplug: stop reading, close both fds, remove the symlink (if it still points to us)."""
        master, slave = self._master, self._slave
        self._master = self._slave = None
        self._pending.clear()
        if master is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(master)
            if self._writer_armed:
                loop.remove_writer(master)
                self._writer_armed = False
            os.close(master)
        if slave is not None:
            os.close(slave)
        with contextlib.suppress(OSError):
            if self.slave_name is not None and os.readlink(self.link) == self.slave_name:
                self.link.unlink()

    def write(self, data: bytes) -> None:
        """Queue bytes for the client; never blocks, drops beyond ``MAX_PENDING``."""
        if self._master is None or not data:
            return
        room = MAX_PENDING - len(self._pending)
        if room < len(data):
            self.dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        self._pending += data
        self._flush()

    @property
    def pending(self) -> int:
        """Bytes queued but not yet accepted by the kernel."""
        return len(self._pending)

    def _flush(self) -> None:
        master = self._master
        if master is None:
            return
        while self._pending:
            try:
                written = os.write(master, self._pending)
            except BlockingIOError:
                break
            except OSError:
                self._pending.clear()
                return
            del self._pending[:written]
        loop = asyncio.get_running_loop()
        if self._pending and not self._writer_armed:
            loop.add_writer(master, self._flush)
            self._writer_armed = True
        elif not self._pending and self._writer_armed:
            loop.remove_writer(master)
            self._writer_armed = False

    def _readable(self) -> None:
        master = self._master
        if master is None:
            return
        try:
            data = os.read(master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                # Cannot happen while we hold the slave open; stop reading rather than spin.
                asyncio.get_running_loop().remove_reader(master)
                return
            raise
        if data:
            self._on_data(data)
