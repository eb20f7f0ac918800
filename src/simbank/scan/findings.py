"""What ``simbankd scan`` found on each serial port: plain data, no I/O.

One :class:`PortFinding` per device node probed (its USB identity from sysfs, whether it
answered ``AT``, what the modem said about itself and its SIM); :func:`parse_ati` reads the
free-text ``ATI`` answer for firmware whose ``AT+CGMI``/``AT+CGMM`` say nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from simbank.drivers.parse.identity import clean_identity


class PortStatus(StrEnum):
    """The outcome of probing one port."""

    ANSWERED = "answered"  # OK to AT: a modem's AT port
    SILENT = "silent"  # nothing at all within the timeout
    GARBAGE = "garbage"  # bytes, but never an OK to AT (not an AT port, wrong speed)
    IN_USE = "in_use"  # another process holds it: never probed
    UNCHECKED = "unchecked"  # others' open ports cannot be seen without root: never probed
    UNAVAILABLE = "unavailable"  # cannot be opened (permission, gone, not a tty)


@dataclass(frozen=True, slots=True)
class UsbInfo:
    """The USB identity of a tty, as sysfs shows it (hex ids lower-case, as udev matches them).

    ``kernels`` is the USB device's bus-port name (``1-1.2``), ``interface`` its
    ``bInterfaceNumber`` (``02``) — None for a tty that is not a USB function (ACM ports have
    one, so do usb-serial ones).
    """

    vendor_id: str
    product_id: str
    kernels: str
    serial: str | None = None
    interface: str | None = None
    manufacturer: str | None = None
    product: str | None = None


@dataclass(frozen=True, slots=True)
class PortFinding:
    """One device node and what probing it showed."""

    path: str  # as found (a glob match, or the path given)
    device: str  # the device node it resolves to
    status: PortStatus
    detail: str = ""  # why it is silent, in use, unavailable; empty when it answered
    by_id: str | None = None  # its /dev/serial/by-id/ name, if any
    usb: UsbInfo | None = None
    manufacturer: str = ""
    model: str = ""
    revision: str = ""
    imei: str | None = None
    sim: str | None = None  # the SimStatus value (ready, pin, absent, …) if AT+CPIN? answered
    iccid: str | None = None
    driver: str | None = None  # the dialect simbank would pick for this identity
    slot_switch: bool = False  # the dialect's slot query answered: more than one SIM slot
    notes: tuple[str, ...] = field(default=())

    @property
    def answered(self) -> bool:
        return self.status is PortStatus.ANSWERED


def parse_ati(lines: Sequence[str]) -> tuple[str, str, str]:
    """``(manufacturer, model, revision)`` from an ``ATI`` answer (V.25ter: free text).

    Most modems answer three lines — ``Quectel`` / ``EC25`` / ``Revision: EC25EFAR06A06M4G`` —
    some prefix them (``Manufacturer: SIMCOM INCORPORATED``, ``Model: SIMCOM_SIM7600E-H``).
    Lines that are empty or say nothing known are skipped; missing parts are ``""``.
    """
    manufacturer = model = revision = ""
    plain: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        head = line.split(":", 1)[0].strip().lower()
        if head == "manufacturer":
            manufacturer = clean_identity(line, "+CGMI")
        elif head == "model":
            model = clean_identity(line, "+CGMM")
        elif head == "revision":
            revision = clean_identity(line, "+CGMR")
        elif ":" not in line:
            plain.append(line)
    if not manufacturer and plain:
        manufacturer = plain.pop(0)
    if not model and plain:
        model = plain.pop(0)
    return manufacturer, model, revision
