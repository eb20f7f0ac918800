"""Where ``simbankd scan`` reads the system: USB identity from sysfs, holders from /proc,
the port globs. Each test builds the tree it reads in tmp_path, laid out as Linux lays it out
(data, not mocks)."""

from __future__ import annotations

import os
from pathlib import Path

from simbank.scan.findings import UsbInfo
from simbank.scan.ports import candidates, holders, is_pty
from simbank.scan.sysfs import usb_info

USB_DEVICE = "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.2"


def _attributes(directory: Path, **values: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        (directory / name).write_text(value + "\n")


def _tty(sysfs: Path, name: str, device_dir: Path) -> None:
    """/sys/class/tty/<name>/device -> the tty's device directory (relative, as the kernel)."""
    link_dir = sysfs / "class" / "tty" / name
    link_dir.mkdir(parents=True)
    (link_dir / "device").symlink_to(os.path.relpath(device_dir, link_dir))


def _quectel(sysfs: Path, *, serial: str | None) -> Path:
    """An EC25 as usb-serial lays it out: device 1-1.2, interfaces 1-1.2:1.0 … 1.3, a
    ttyUSB<n> port device under each."""
    device = sysfs / USB_DEVICE
    values = {"idVendor": "2C7C", "idProduct": "0125", "manufacturer": "Quectel", "product": "EC25"}
    if serial is not None:
        values["serial"] = serial
    _attributes(device, **values)
    for number in range(4):
        interface = device / f"1-1.2:1.{number}"
        _attributes(interface, bInterfaceNumber=f"{number:02d}")
        port = interface / f"ttyUSB{number}"
        port.mkdir()
        _tty(sysfs, f"ttyUSB{number}", port)
    return device


def test_usb_serial_port(tmp_path: Path) -> None:
    _quectel(tmp_path, serial="0123456789ABCDEF")
    assert usb_info("/dev/ttyUSB2", tmp_path) == UsbInfo(
        vendor_id="2c7c",
        product_id="0125",
        kernels="1-1.2",
        serial="0123456789ABCDEF",
        interface="02",
        manufacturer="Quectel",
        product="EC25",
    )
    assert usb_info("/dev/ttyUSB3", tmp_path).interface == "03"  # type: ignore[union-attr]


def test_no_serial_number(tmp_path: Path) -> None:
    _quectel(tmp_path, serial=None)
    info = usb_info("/dev/ttyUSB2", tmp_path)
    assert info is not None
    assert info.serial is None
    assert info.kernels == "1-1.2"


def test_cdc_acm_port_is_the_interface_itself(tmp_path: Path) -> None:
    device = tmp_path / "devices/pci0000:00/usb1/1-1/1-1.4"
    _attributes(device, idVendor="12d1", idProduct="1506")
    interface = device / "1-1.4:1.2"
    _attributes(interface, bInterfaceNumber="02")
    _tty(tmp_path, "ttyACM0", interface)
    info = usb_info("/dev/ttyACM0", tmp_path)
    assert info is not None
    assert (info.vendor_id, info.product_id, info.interface, info.serial) == (
        "12d1",
        "1506",
        "02",
        None,
    )


def test_no_usb_device(tmp_path: Path) -> None:
    """A PTY is not in /sys/class/tty; a built-in UART is, with no USB device above it."""
    uart = tmp_path / "devices/platform/serial8250/tty/ttyS0"
    uart.mkdir(parents=True)
    _tty(tmp_path, "ttyS0", uart)
    assert usb_info("/dev/ttyS0", tmp_path) is None
    assert usb_info("/dev/pts/3", tmp_path) is None
    assert usb_info("/dev/ttyUSB9", tmp_path) is None


def test_holders_from_proc(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for pid, command, targets in [
        (812, "ModemManager", ["/dev/ttyUSB2", "socket:[123]", "/dev/ttyUSB3"]),
        (900, "picocom", ["/dev/ttyUSB3"]),
        (1000, "bash", ["/dev/pts/0"]),
        (4242, "simbankd", ["/dev/ttyUSB2"]),  # ourselves: not a holder
    ]:
        fd = proc / str(pid) / "fd"
        fd.mkdir(parents=True)
        (proc / str(pid) / "comm").write_text(command + "\n")
        for number, target in enumerate(targets):
            (fd / str(number)).symlink_to(target)
    (proc / "self").mkdir()  # not a pid
    (proc / "1234").mkdir()  # a process whose fd directory we may not read
    found = holders(["/dev/ttyUSB2", "/dev/ttyUSB3", "/dev/ttyUSB4"], proc, own_pid=4242)
    assert {k: sorted(v) for k, v in found.items()} == {
        "/dev/ttyUSB2": ["ModemManager (pid 812)"],
        "/dev/ttyUSB3": ["ModemManager (pid 812)", "picocom (pid 900)"],
    }
    assert holders([], proc) == {}


def test_candidates_resolve_links_once_per_device(tmp_path: Path) -> None:
    devices = tmp_path / "dev"
    devices.mkdir()
    for name in ("ttyUSB10", "ttyUSB2", "ttyUSB3"):
        (devices / name).touch()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-Quectel_EC25-if02-port0").symlink_to(devices / "ttyUSB2")
    found = candidates(
        [f"{devices}/ttyUSB*", f"{by_id}/*", f"{devices}/ttyUSB2"], by_id_dir=f"{by_id}/"
    )
    assert [(Path(c.path).name, Path(c.device).name) for c in found] == [
        ("ttyUSB2", "ttyUSB2"),
        ("ttyUSB3", "ttyUSB3"),
        ("ttyUSB10", "ttyUSB10"),
    ]
    assert found[0].by_id == f"{by_id}/usb-Quectel_EC25-if02-port0"
    assert [c.by_id for c in found[1:]] == [None, None]
    # found through its by-id name only: probed as the device, the name remembered
    only = candidates([f"{by_id}/*"], by_id_dir=f"{by_id}/")
    assert [(c.path, c.by_id) for c in only] == [
        (str(devices / "ttyUSB2"), f"{by_id}/usb-Quectel_EC25-if02-port0")
    ]
    assert candidates([f"{devices}/nothing*"]) == []
    assert is_pty("/dev/pts/3")
    assert not is_pty("/dev/ttyUSB2")
