"""Ports → modems: the AT ports of one modem grouped, the one to use chosen, ids given.

A modem often has more than one port that answers ``AT`` (a Quectel EC25: ``ttyUSB2``, the
AT port, and ``ttyUSB3``, the PPP modem port). They report the same IMEI, so they are one
modem; its recommended port is the vendor's documented AT interface when sysfs tells the
interface numbers, else the lowest-numbered port that answered. Pure: findings in, modems out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from simbank.scan.findings import PortFinding

#: The USB interface that carries the AT command port, by USB vendor id, from the vendors'
#: manuals as systemd/99-simbank.rules cites them: Quectel EC2x/EG2x (2c7c) and SIMCom
#: SIM7600 (1e0e) 02 (00 DM, 01 NMEA, 03 PPP modem); Huawei ME909s/E3372 (12d1) 02 (PCUI).
AT_INTERFACES: dict[str, str] = {"2c7c": "02", "1e0e": "02", "12d1": "02"}


@dataclass(frozen=True, slots=True)
class ScannedModem:
    """One modem: the port to configure and the other AT ports it showed."""

    id: str
    port: PortFinding
    others: tuple[PortFinding, ...] = ()

    @property
    def slots(self) -> int:
        """A guess: 2 when the dialect's slot query answered, else 1 (the board decides)."""
        return 2 if self.port.slot_switch else 1

    @property
    def config_port(self) -> str:
        """``/dev/simbank/<id>`` when a udev rule can name it, else the most stable path."""
        if self.port.usb is not None:
            return f"/dev/simbank/{self.id}"
        return self.port.by_id or self.port.path


def natural_key(path: str) -> tuple[tuple[int, str | int], ...]:
    """``/dev/ttyUSB10`` after ``/dev/ttyUSB2``."""
    return tuple(
        (1, int(part)) if part.isdigit() else (0, part) for part in re.split(r"(\d+)", path) if part
    )


def _preference(finding: PortFinding) -> tuple[int, int, tuple[tuple[int, str | int], ...]]:
    usb = finding.usb
    documented = usb is not None and AT_INTERFACES.get(usb.vendor_id) == usb.interface
    interface = int(usb.interface, 16) if usb is not None and usb.interface else 255
    return (0 if documented else 1, interface, natural_key(finding.path))


def _group_key(finding: PortFinding) -> str:
    if finding.imei:
        return f"imei:{finding.imei}"
    if finding.usb is not None:  # no IMEI: ports of one USB device are one modem
        return f"usb:{finding.usb.kernels}:{finding.usb.vendor_id}:{finding.usb.product_id}"
    return f"device:{finding.device}"


def group_modems(findings: Iterable[PortFinding], prefix: str = "m") -> list[ScannedModem]:
    """The modems among the ports that answered, ids ``m1``, ``m2``… in port order."""
    groups: dict[str, list[PortFinding]] = {}
    for finding in findings:
        if finding.answered:
            groups.setdefault(_group_key(finding), []).append(finding)
    ordered = sorted(
        (sorted(ports, key=_preference) for ports in groups.values()),
        key=lambda ports: natural_key(ports[0].path),
    )
    return [
        ScannedModem(id=f"{prefix}{number}", port=ports[0], others=tuple(ports[1:]))
        for number, ports in enumerate(ordered, start=1)
    ]
