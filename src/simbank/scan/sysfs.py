"""The USB identity of a tty from sysfs: vendor and product ids, serial number, interface.

``/sys/class/tty/<name>/device`` leads to the tty's device; walking up from there, the first
directory with a ``bInterfaceNumber`` is the USB interface (the modem's function: AT, NMEA,
PPP…) and the first with an ``idVendor`` is the USB device (its ids, serial number and name,
the ``ATTRS{…}`` a udev rule matches; its directory name is udev's ``KERNELS``, ``1-1.2``).
A PTY or a built-in UART has no USB device: ``None``. Reads files only; ``sysfs`` is a
parameter so a test can hand it a tree of its own.
"""

from __future__ import annotations

from pathlib import Path

from simbank.scan.findings import UsbInfo

SYSFS = Path("/sys")


def _attribute(directory: Path, name: str) -> str | None:
    try:
        value = (directory / name).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return value or None


def usb_info(device: str, sysfs: Path = SYSFS) -> UsbInfo | None:
    """The USB identity of the tty ``device`` (``/dev/ttyUSB2``), or None if it has none."""
    root = sysfs.resolve()
    try:
        node = (root / "class" / "tty" / Path(device).name / "device").resolve(strict=True)
    except (OSError, RuntimeError):  # no such tty in sysfs, or a symlink loop
        return None
    interface: str | None = None
    for directory in (node, *node.parents):
        if directory == root or not directory.is_relative_to(root):
            break
        if interface is None:
            interface = _attribute(directory, "bInterfaceNumber")
        vendor = _attribute(directory, "idVendor")
        if vendor is None:
            continue
        product = _attribute(directory, "idProduct")
        if product is None:
            return None
        return UsbInfo(
            vendor_id=vendor.lower(),
            product_id=product.lower(),
            kernels=directory.name,
            serial=_attribute(directory, "serial"),
            interface=interface,
            manufacturer=_attribute(directory, "manufacturer"),
            product=_attribute(directory, "product"),
        )
    return None
