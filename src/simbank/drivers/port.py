"""The serial port adapter: the only module that imports pyserial.

``open_port`` opens the device exclusively (``flock``), wires it to an ``AtChannel`` that knows
the URC names of every dialect (``registry.VENDOR_URC_NAMES``) and waits until the channel is
connected. A missing, busy or forbidden device raises PortUnavailable;
an unplug (EIO on read) reaches ``AtChannel.connection_lost`` and fails pending requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import termios

import serial
import serial_asyncio_fast

from simbank.at.channel import AtChannel
from simbank.drivers.registry import VENDOR_URC_NAMES
from simbank.errors import PortUnavailable


def _reason(path: str, exc: BaseException) -> str:
    """A sentence an operator can act on, from pyserial's wrapped OSError."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.ENOENT or "No such file" in text:
        return f"{path}: no such device (unplugged, or wrong path?)"
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return f"{path}: permission denied (is the user in the 'dialout' group?)"
    if code == errno.EBUSY or "exclusively lock" in text or "busy" in text.lower():
        return f"{path}: busy (already opened by another process or channel)"
    return f"{path}: cannot open: {text}"


class EpollSerial(serial.Serial):
    """pyserial's POSIX Serial with one change: ``read`` is a single non-blocking
    ``os.read``. pyserial's own ``read`` calls ``select()``, which cannot take a descriptor
    of 1024 or more: on a gateway with a few hundred modems (five descriptors each) every
    port opened past that point failed. The transport only reads when epoll says the port
    is readable, so the select was redundant anyway. Any read error becomes a
    SerialException, which ends the port's session instead of spinning the loop."""

    def read(self, size: int = 1) -> bytes:
        if not self.is_open or self.fd is None:
            raise serial.PortNotOpenError
        try:
            data = os.read(self.fd, size)
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise serial.SerialException(f"read failed: {exc}") from exc
        if not data:
            raise serial.SerialException(
                "device reports readiness to read but returned no data "
                "(device disconnected or multiple access on port?)"
            )
        return data


def _open(path: str, baudrate: int) -> EpollSerial:
    return EpollSerial(
        path, baudrate=baudrate, exclusive=True, rtscts=False, dsrdtr=False, xonxoff=False
    )


def _forbid_other_opens(port: serial.Serial | None) -> None:
    """TIOCEXCL on top of pyserial's advisory flock: a plain open() by another program
    (ModemManager probing, a stray ``cat``) now fails with EBUSY too. Root bypasses it."""
    if port is None or port.fd is None:
        return
    with contextlib.suppress(OSError):
        fcntl.ioctl(port.fd, termios.TIOCEXCL)


async def open_port(
    path: str,
    baudrate: int,
    name: str,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - the documented contract takes a timeout
) -> AtChannel:
    """Open ``path`` exclusively at ``baudrate`` and return its connected AtChannel.

    Raises PortUnavailable if the device is missing, busy, forbidden or does not open within
    ``timeout`` seconds.
    """
    channel = AtChannel(name, urc_names=VENDOR_URC_NAMES)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            # open() runs in a worker thread, as pyserial-asyncio-fast itself does: a tty
            # open can block (and cannot be cancelled) on misbehaving USB devices.
            port = await loop.run_in_executor(None, _open, path, baudrate)
            transport, _ = await serial_asyncio_fast.connection_for_serial(
                loop, lambda: channel, port
            )
            await channel.wait_connected(timeout)
            _forbid_other_opens(transport.serial)
    except TimeoutError:
        channel.close()
        raise PortUnavailable(f"{path}: did not open within {timeout:g}s") from None
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortUnavailable(_reason(path, exc)) from exc
    return channel
