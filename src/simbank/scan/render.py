"""The scan's output: a ``[[modems]]`` block for simbank.toml, udev rule lines in the style of
systemd/99-simbank.rules, a summary for a person and a document for a program. Pure.

The TOML block is valid on its own (``tomllib`` reads it; the config loader accepts it below
a ``[gateway]`` section). Every string is written as a TOML basic string; comments are made
single-line and printable, since a modem's identity is text we did not write.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from simbank.scan.findings import PortFinding, UsbInfo
from simbank.scan.grouping import ScannedModem

TOML_HEADER = "# --- simbank.toml: paste into /etc/simbank/simbank.toml ---"
UDEV_HEADER = "# --- udev: paste into /etc/udev/rules.d/99-simbank.rules ---"
#: What every simbank port gets, as in systemd/99-simbank.rules: the daemon's group, and
#: ModemManager kept away.
UDEV_ACTIONS = 'GROUP="dialout", MODE="0660", ENV{ID_MM_DEVICE_IGNORE}="1"'
_UDEV_VALUE = re.compile(r"[A-Za-z0-9._:+-]+")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(value)


def comment(text: str) -> str:
    """``text`` made safe for one comment line (no newline, no control characters)."""
    return _UNPRINTABLE.sub("?", text)


def _identity(finding: PortFinding) -> str:
    words = " ".join(part for part in (finding.manufacturer, finding.model) if part)
    return words or "unknown model"


def _sim(finding: PortFinding) -> str:
    if finding.iccid:
        return f"SIM {finding.iccid}"
    if finding.sim == "absent":
        return "no SIM"
    if finding.sim == "error":
        return "no SIM or a SIM error (AT+CPIN? answered ERROR)"
    if finding.sim:
        return f"SIM {finding.sim}, ICCID not readable"
    return "SIM not readable"


def _slots_note(modem: ScannedModem) -> str:
    if modem.port.slot_switch:
        return "the modem has a slot switch; set 1 if the board wires one SIM"
    return "no slot switch answered: one SIM slot"


def config_block(modems: Sequence[ScannedModem]) -> str:
    """The ``[[modems]]`` entries, one per modem, with what was found as comments."""
    out: list[str] = []
    for modem in modems:
        port = modem.port
        where = port.path if port.path == port.device else f"{port.path} -> {port.device}"
        out += [
            f"# {comment(_identity(port))}, IMEI {port.imei or 'unknown'}, {comment(_sim(port))}",
            f"# found on {comment(where)}"
            + (
                f" (also answers: {', '.join(o.path for o in modem.others)})"
                if modem.others
                else ""
            ),
            "[[modems]]",
            f"id = {toml_string(modem.id)}",
        ]
        port_line = f"port = {toml_string(modem.config_port)}"
        if port.usb is not None:
            port_line += "  # the udev rule below makes this name"
        out += [
            port_line,
            f"driver = {toml_string(port.driver or 'auto')}",
            f"slots = {modem.slots}  # {_slots_note(modem)}",
            "",
        ]
    return "\n".join(out).rstrip("\n") + "\n" if out else ""


def _matches(usb: UsbInfo) -> str:
    """The parent-device keys that pick out this one USB device."""
    keys = [f'ATTRS{{idVendor}}=="{usb.vendor_id}"', f'ATTRS{{idProduct}}=="{usb.product_id}"']
    if usb.serial and _UDEV_VALUE.fullmatch(usb.serial):
        keys.append(f'ATTRS{{serial}}=="{usb.serial}"')
    else:  # no serial number: only the USB port tells two such modems apart
        keys.append(f'KERNELS=="{usb.kernels}"')
    return ", ".join(keys)


def udev_lines(modems: Sequence[ScannedModem]) -> list[str]:
    """One rule per modem for its AT port, one that keeps ModemManager off its other ports.

    A port with no USB device behind it (a PTY, a platform UART) needs no rule: its lines are
    printed commented out, with a note, as a template.
    """
    out: list[str] = []
    without = [modem for modem in modems if modem.port.usb is None]
    if without:
        out.append(
            f"# {', '.join(m.id for m in without)}: no USB device in sysfs (a PTY or a built-in "
            "UART): no rule needed, the config names the port itself. A USB modem's rule reads:"
        )
        out += [
            f'# SUBSYSTEM=="tty", ATTRS{{idVendor}}=="<vid>", ATTRS{{idProduct}}=="<pid>", '
            f'ATTRS{{serial}}=="<serial>", ENV{{ID_USB_INTERFACE_NUM}}=="<nn>", '
            f'SYMLINK+="simbank/{modem.id}", {UDEV_ACTIONS}'
            for modem in without
        ]
    for modem in modems:
        usb = modem.port.usb
        if usb is None:
            continue
        link = f'SYMLINK+="simbank/{modem.id}"'
        name = comment(" ".join(p for p in (usb.manufacturer, usb.product) if p) or "modem")
        keys = _matches(usb)
        interface = (
            f', ENV{{ID_USB_INTERFACE_NUM}}=="{usb.interface}"' if usb.interface is not None else ""
        )
        out += [
            f"# {modem.id}: {name} ({usb.vendor_id}:{usb.product_id}), AT port "
            f"{comment(modem.port.device)}",
            f'SUBSYSTEM=="tty", {keys}{interface}, {link}, {UDEV_ACTIONS}',
            f'SUBSYSTEM=="tty", {keys}, ENV{{ID_MM_DEVICE_IGNORE}}="1"',
        ]
    return out


def port_line(finding: PortFinding, modems: Sequence[ScannedModem]) -> str:
    """One line per port for the summary."""
    shown = finding.path if finding.path == finding.device else f"{finding.path} ({finding.device})"
    if not finding.answered:
        return f"{shown}: {finding.status.value.replace('_', ' ')}: {finding.detail}"
    for modem in modems:
        if modem.port is finding:
            return (
                f"{shown}: {modem.id}: {_identity(finding)}, IMEI {finding.imei or 'unknown'}, "
                f"{_sim(finding)}, driver {finding.driver}"
            )
        if finding in modem.others:
            return f"{shown}: another AT port of {modem.id} (same IMEI): not needed"
    return f"{shown}: answered"


def text_report(
    findings: Sequence[PortFinding], modems: Sequence[ScannedModem], patterns: Sequence[str]
) -> str:
    """What ``simbankd scan`` prints: the ports, then the config block and the udev lines."""
    lines = [f"# {comment(port_line(f, modems))}" for f in findings]
    if not findings:
        lines.append(f"# no serial port matches {' '.join(patterns)}")
    if not modems:
        lines.append(f"no modem answered on {' '.join(patterns)}")
        return "\n".join(lines) + "\n"
    lines += ["", TOML_HEADER, config_block(modems).rstrip("\n"), "", UDEV_HEADER]
    lines += udev_lines(modems)
    if any(modem.port.usb is not None for modem in modems):
        lines += [
            "# then: udevadm control --reload && udevadm trigger --subsystem-match=tty",
        ]
    return "\n".join(lines) + "\n"


def _usb_json(usb: UsbInfo | None) -> dict[str, Any] | None:
    if usb is None:
        return None
    return {
        "vendor_id": usb.vendor_id,
        "product_id": usb.product_id,
        "serial": usb.serial,
        "interface": usb.interface,
        "kernels": usb.kernels,
        "manufacturer": usb.manufacturer,
        "product": usb.product,
    }


def _port_json(finding: PortFinding) -> dict[str, Any]:
    return {
        "path": finding.path,
        "device": finding.device,
        "by_id": finding.by_id,
        "status": finding.status.value,
        "detail": finding.detail,
        "usb": _usb_json(finding.usb),
        "manufacturer": finding.manufacturer,
        "model": finding.model,
        "revision": finding.revision,
        "imei": finding.imei,
        "sim": finding.sim,
        "iccid": finding.iccid,
        "driver": finding.driver,
        "slot_switch": finding.slot_switch,
        "notes": list(finding.notes),
    }


def json_report(findings: Sequence[PortFinding], modems: Sequence[ScannedModem]) -> dict[str, Any]:
    """``simbankd scan --json``: every port, every modem, and the same config and udev text."""
    return {
        "ports": [_port_json(f) for f in findings],
        "modems": [
            {
                "id": m.id,
                "port": m.config_port,
                "device": m.port.device,
                "path": m.port.path,
                "other_ports": [o.path for o in m.others],
                "driver": m.port.driver,
                "slots": m.slots,
                "imei": m.port.imei,
                "iccid": m.port.iccid,
                "manufacturer": m.port.manufacturer,
                "model": m.port.model,
                "revision": m.port.revision,
                "usb": _usb_json(m.port.usb),
            }
            for m in modems
        ],
        "config": config_block(modems),
        "udev": udev_lines(modems),
        "answered": bool(modems),
    }
