"""``simbankd scan``'s pure part: ATI answers, grouping a modem's ports, the TOML block and
the udev lines (findings made by hand: data, not mocks)."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from simbank.config.loader import parse_config
from simbank.scan.findings import PortFinding, PortStatus, UsbInfo, parse_ati
from simbank.scan.grouping import group_modems, natural_key
from simbank.scan.render import (
    TOML_HEADER,
    UDEV_HEADER,
    config_block,
    json_report,
    text_report,
    udev_lines,
)

QUECTEL_USB = UsbInfo("2c7c", "0125", "1-1.2", serial=None, interface="02", product="EC25")
IMEI_Q = "350000000000014"
IMEI_S = "350000000000022"
ICCID_Q = "89990100000000000013"
ICCID_S = "89990100000000000021"


def _answered(path: str, **fields: object) -> PortFinding:
    base = PortFinding(
        path, path, PortStatus.ANSWERED, manufacturer="Quectel", model="EC25", driver="quectel"
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def _config(block: str) -> str:
    return f'[gateway]\nid = "gw1"\nstate_dir = "/tmp/simbank-scan-test"\n\n{block}'


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ["Quectel", "EC25", "Revision: EC25EFAR06A06M4G"],
            ("Quectel", "EC25", "EC25EFAR06A06M4G"),
        ),
        (
            ["Manufacturer: SIMCOM INCORPORATED", "Model: SIMCOM_SIM7600E-H", "Revision: LE20B04"],
            ("SIMCOM INCORPORATED", "SIMCOM_SIM7600E-H", "LE20B04"),
        ),
        (["", "huawei", "E3372", "IMEI: 350000000000022"], ("huawei", "E3372", "")),
        ([], ("", "", "")),
    ],
)
def test_ati_answers(lines: list[str], expected: tuple[str, str, str]) -> None:
    assert parse_ati(lines) == expected


def test_natural_order() -> None:
    paths = ["/dev/ttyUSB10", "/dev/ttyUSB2", "/dev/ttyACM0", "/dev/ttyUSB3"]
    assert sorted(paths, key=natural_key) == [
        "/dev/ttyACM0",
        "/dev/ttyUSB2",
        "/dev/ttyUSB3",
        "/dev/ttyUSB10",
    ]


def test_two_ports_of_one_modem_are_one_modem_on_its_documented_at_port() -> None:
    ppp = _answered("/dev/ttyUSB3", imei=IMEI_Q, usb=replace(QUECTEL_USB, interface="03"))
    at = _answered("/dev/ttyUSB2", imei=IMEI_Q, usb=QUECTEL_USB, iccid=ICCID_Q)
    other = _answered("/dev/ttyUSB6", imei=IMEI_S, manufacturer="SIMCOM", driver="simcom")
    silent = PortFinding("/dev/ttyUSB0", "/dev/ttyUSB0", PortStatus.SILENT, detail="no answer")
    modems = group_modems([ppp, silent, other, at])
    assert [(m.id, m.port.path, [o.path for o in m.others]) for m in modems] == [
        ("m1", "/dev/ttyUSB2", ["/dev/ttyUSB3"]),
        ("m2", "/dev/ttyUSB6", []),
    ]


def test_without_interface_numbers_the_lowest_port_is_chosen() -> None:
    modems = group_modems(
        [_answered("/dev/ttyUSB11", imei=IMEI_Q), _answered("/dev/ttyUSB9", imei=IMEI_Q)]
    )
    assert [(m.port.path, len(m.others)) for m in modems] == [("/dev/ttyUSB9", 1)]


def test_config_block_is_toml_the_loader_accepts() -> None:
    usb = _answered("/dev/ttyUSB2", imei=IMEI_Q, usb=QUECTEL_USB, iccid=ICCID_Q, slot_switch=True)
    pty = _answered(
        '/run/ports/m"x',  # a quote in a path must not break the TOML
        device="/dev/pts/7",
        imei=IMEI_S,
        manufacturer='Evil "Modem"\nCo',
        model="X1",
        driver="generic",
    )
    modems = group_modems([usb, pty])
    block = config_block(modems)
    parsed = tomllib.loads(block)
    assert parsed["modems"] == [
        {"id": "m1", "port": "/dev/simbank/m1", "driver": "quectel", "slots": 2},
        {"id": "m2", "port": '/run/ports/m"x', "driver": "generic", "slots": 1},
    ]
    config = parse_config(_config(block), "scan")
    assert [(m.id, m.port, m.driver, m.slots) for m in config.modems] == [
        ("m1", "/dev/simbank/m1", "quectel", 2),
        ("m2", '/run/ports/m"x', "generic", 1),
    ]
    assert ICCID_Q in block and IMEI_Q in block  # the evidence rides along as comments
    assert "\nCo" not in block  # a modem's text cannot start a line of its own


def test_by_id_name_is_preferred_to_a_bare_tty_without_udev() -> None:
    by_id = "/dev/serial/by-id/usb-Quectel_EC25-if02-port0"
    modems = group_modems([_answered("/dev/ttyUSB2", imei=IMEI_Q, by_id=by_id)])
    assert tomllib.loads(config_block(modems))["modems"][0]["port"] == by_id


def test_udev_lines_match_the_rules_file_style() -> None:
    with_serial = replace(QUECTEL_USB, serial="0123456789ABCDEF")
    modems = group_modems(
        [
            _answered("/dev/ttyUSB2", imei=IMEI_Q, usb=with_serial),
            _answered("/dev/ttyUSB7", imei=IMEI_S, usb=replace(QUECTEL_USB, kernels="1-1.3")),
        ]
    )
    rules = [line for line in udev_lines(modems) if not line.startswith("#")]
    assert rules == [
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="2c7c", ATTRS{idProduct}=="0125", '
        'ATTRS{serial}=="0123456789ABCDEF", ENV{ID_USB_INTERFACE_NUM}=="02", '
        'SYMLINK+="simbank/m1", GROUP="dialout", MODE="0660", ENV{ID_MM_DEVICE_IGNORE}="1"',
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="2c7c", ATTRS{idProduct}=="0125", '
        'ATTRS{serial}=="0123456789ABCDEF", ENV{ID_MM_DEVICE_IGNORE}="1"',
        # no serial number: the USB port (KERNELS) tells two such modems apart
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="2c7c", ATTRS{idProduct}=="0125", '
        'KERNELS=="1-1.3", ENV{ID_USB_INTERFACE_NUM}=="02", '
        'SYMLINK+="simbank/m2", GROUP="dialout", MODE="0660", ENV{ID_MM_DEVICE_IGNORE}="1"',
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="2c7c", ATTRS{idProduct}=="0125", '
        'KERNELS=="1-1.3", ENV{ID_MM_DEVICE_IGNORE}="1"',
    ]


def test_a_pty_gets_its_udev_line_commented_out_with_a_note() -> None:
    modems = group_modems([_answered("/tmp/ports/m1", device="/dev/pts/3", imei=IMEI_Q)])
    lines = udev_lines(modems)
    assert lines and all(line.startswith("#") for line in lines)
    assert "no USB device" in lines[0]
    assert 'SYMLINK+="simbank/m1"' in lines[1]


def test_text_report_sections_and_the_empty_case() -> None:
    silent = PortFinding("/dev/ttyUSB0", "/dev/ttyUSB0", PortStatus.SILENT, detail="no answer")
    held = PortFinding("/dev/ttyUSB1", "/dev/ttyUSB1", PortStatus.IN_USE, detail="open by x")
    nothing = text_report([silent, held], [], ["/dev/ttyUSB*"])
    assert nothing.splitlines() == [
        "# /dev/ttyUSB0: silent: no answer",
        "# /dev/ttyUSB1: in use: open by x",
        "no modem answered on /dev/ttyUSB*",
    ]
    assert text_report([], [], ["/dev/ttyUSB*"]).splitlines() == [
        "# no serial port matches /dev/ttyUSB*",
        "no modem answered on /dev/ttyUSB*",
    ]
    found = _answered("/dev/ttyUSB2", imei=IMEI_Q, usb=QUECTEL_USB, iccid=ICCID_Q)
    modems = group_modems([found, silent])
    text = text_report([found, silent], modems, ["/dev/ttyUSB*"])
    block = text.split(TOML_HEADER + "\n", 1)[1].split(UDEV_HEADER, 1)[0]
    assert tomllib.loads(block) == tomllib.loads(config_block(modems))
    report = json_report([found, silent], modems)
    assert report["config"] == config_block(modems)
    assert [p["status"] for p in report["ports"]] == ["answered", "silent"]
    assert report["modems"][0]["iccid"] == ICCID_Q


def test_the_shipped_rules_file_shows_what_the_scan_prints() -> None:
    """systemd/99-simbank.rules' examples are the scan's own lines for those modems."""
    rules = (Path(__file__).resolve().parents[2] / "systemd" / "99-simbank.rules").read_text()
    modems = group_modems(
        [
            _answered(
                "/dev/ttyUSB2", imei=IMEI_Q, usb=replace(QUECTEL_USB, serial="0123456789ABCDEF")
            ),
            _answered(
                "/dev/ttyUSB7",
                imei=IMEI_S,
                usb=UsbInfo("1e0e", "9001", "1-1.3", interface="02"),
                driver="simcom",
            ),
        ]
    )
    printed = [line for line in udev_lines(modems) if not line.startswith("#")]
    assert len(printed) == 4
    for line in printed:
        assert f"\n{line}\n" in rules, line
