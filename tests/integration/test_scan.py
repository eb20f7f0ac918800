"""``simbankd scan`` against simulated modems on real PTYs, beside a silent port, a port that
answers garbage and a port another process has locked.

The bank: a Quectel EC21 seen on two ports (two simulated modems with one IMEI, as an EC25's
ttyUSB2 and ttyUSB3), a Huawei E3372, and three plain PTYs whose far ends we hold: one never
answers, one answers every write with noise, one is locked (``flock``, as simbankd and
pyserial's ``exclusive=True`` lock) and records what reaches it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tomllib
import tty
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import serial

from simbank.config.loader import parse_config
from simbank.scan.findings import PortStatus
from simbank.scan.grouping import group_modems
from simbank.scan.probe import scan
from simbank.scan.render import TOML_HEADER, UDEV_HEADER
from simbank.simulator import SimulatedBank
from simbank.simulator.scenario import ModemSpec, Scenario, SimSpec, make_iccid, make_imei

pytestmark = pytest.mark.integration

ICCID_EC21 = make_iccid(71)
ICCID_E3372 = make_iccid(72)
IMEI_EC21 = make_imei(71)
IMEI_E3372 = make_imei(72)
ANSWER_S = 0.5
NOISE = b"\xff\xfe\x00\x80garbage\x9b\r\n"


@dataclass
class FarEnd:
    """A PTY whose master we hold: silent, noisy (answers every write with NOISE), or just
    recording what reaches it."""

    link: Path
    noisy: bool = False
    received: bytearray = field(default_factory=bytearray)
    master: int = -1
    slave: int = -1

    def open(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.link.symlink_to(os.ttyname(self.slave))
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        self.received += data
        if self.noisy:
            os.write(self.master, NOISE)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)
        os.close(self.slave)
        self.link.unlink()


def _scenario() -> Scenario:
    return Scenario(
        time_scale=20,
        modems=[
            ModemSpec(
                id="usb2",
                dialect="quectel-ec21",
                imei=IMEI_EC21,
                slots=[SimSpec(iccid=ICCID_EC21)],
            ),
            # the same modem's second AT port (the PPP port of an EC2x)
            ModemSpec(
                id="usb3",
                dialect="quectel-ec21",
                imei=IMEI_EC21,
                slots=[SimSpec(behaviour="absent")],
            ),
            ModemSpec(
                id="usb5",
                dialect="huawei-e3372",
                imei=IMEI_E3372,
                slots=[SimSpec(iccid=ICCID_E3372)],
            ),
        ],
    )


@dataclass
class Rig:
    ports: Path
    bank: SimulatedBank
    silent: FarEnd
    noisy: FarEnd
    locked: FarEnd


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    ports = tmp_path / "ports"
    async with SimulatedBank(_scenario(), ports) as bank:
        silent = FarEnd(ports / "usb0")
        noisy = FarEnd(ports / "usb1", noisy=True)
        locked = FarEnd(ports / "usb4")
        for end in (silent, noisy, locked):
            end.open()
        try:
            yield Rig(ports, bank, silent, noisy, locked)
        finally:
            for end in (silent, noisy, locked):
                end.close()


@pytest.fixture
def holder(rig: Rig) -> Iterator[serial.Serial]:
    """Another opener holding usb4 with an exclusive lock, as simbankd holds its ports."""
    port = serial.Serial(str(rig.locked.link), exclusive=True)
    yield port
    port.close()


def _config(block: str, tmp_path: Path) -> str:
    return f'[gateway]\nid = "gw1"\nstate_dir = "{tmp_path / "state"}"\n\n{block}'


async def test_scan_finds_the_modems_and_leaves_the_rest_alone(
    rig: Rig, holder: serial.Serial, tmp_path: Path
) -> None:
    findings = await scan([f"{rig.ports}/*"], timeout=ANSWER_S)
    by_name = {Path(f.path).name: f for f in findings}
    assert sorted(by_name) == ["usb0", "usb1", "usb2", "usb3", "usb4", "usb5"]
    assert by_name["usb0"].status is PortStatus.SILENT
    assert by_name["usb1"].status is PortStatus.GARBAGE
    assert by_name["usb4"].status is PortStatus.IN_USE
    assert rig.locked.received == b""  # not one byte was sent to the locked port
    assert rig.silent.received.startswith(b"AT\r")

    ec21, ec21_ppp, e3372 = by_name["usb2"], by_name["usb3"], by_name["usb5"]
    assert (ec21.status, ec21.imei, ec21.iccid, ec21.driver) == (
        PortStatus.ANSWERED,
        IMEI_EC21,
        ICCID_EC21,
        "quectel",
    )
    assert (ec21.manufacturer, ec21.model) == ("Quectel", "EC21")
    assert ec21_ppp.imei == IMEI_EC21
    assert ec21_ppp.iccid is None  # no SIM: fine
    assert (e3372.imei, e3372.iccid, e3372.driver) == (IMEI_E3372, ICCID_E3372, "huawei")

    modems = group_modems(findings)
    assert [
        (m.id, Path(m.port.path).name, [Path(o.path).name for o in m.others]) for m in modems
    ] == [
        ("m1", "usb2", ["usb3"]),
        ("m2", "usb5", []),
    ]
    # read-only: no echo off, no verbose errors, radio untouched
    for modem in rig.bank.modems.values():
        assert modem.settings.echo is True
        assert modem.settings.cmee == 0
        assert modem.cfun == 1


async def _simbankd(*args: str) -> tuple[int, str, str]:
    simbankd = Path(sys.executable).with_name("simbankd")
    proc = await asyncio.create_subprocess_exec(
        str(simbankd), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)  # a hang guard
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_simbankd_scan_prints_a_config_the_loader_accepts(
    rig: Rig, holder: serial.Serial, tmp_path: Path
) -> None:
    pattern = f"{rig.ports}/*"
    code, out, err = await _simbankd("scan", "--ports", pattern, "--timeout", str(ANSWER_S))
    assert code == 0, err
    block = out.split(TOML_HEADER + "\n", 1)[1].split(UDEV_HEADER, 1)[0]
    config = parse_config(_config(block, tmp_path), "scan output")
    assert [(m.id, m.port, m.driver, m.slots) for m in config.modems] == [
        ("m1", str(rig.ports / "usb2"), "quectel", 1),
        ("m2", str(rig.ports / "usb5"), "huawei", 1),
    ]
    assert f"{rig.ports / 'usb4'}" in out and "in use" in out
    assert f"{rig.ports / 'usb0'}" in out and "no answer to AT" in out
    assert ICCID_EC21 in block and ICCID_E3372 in block

    code, out, err = await _simbankd(
        "scan", "--json", "--ports", pattern, "--timeout", str(ANSWER_S)
    )
    assert code == 0, err
    report = json.loads(out)
    assert {m["imei"]: m["iccid"] for m in report["modems"]} == {
        IMEI_EC21: ICCID_EC21,
        IMEI_E3372: ICCID_E3372,
    }
    statuses = {Path(p["path"]).name: p["status"] for p in report["ports"]}
    assert statuses == {
        "usb0": "silent",
        "usb1": "garbage",
        "usb2": "answered",
        "usb3": "answered",
        "usb4": "in_use",
        "usb5": "answered",
    }
    assert tomllib.loads(report["config"])["modems"][0]["port"] == str(rig.ports / "usb2")
    assert rig.locked.received == b""


async def test_no_modem_answered_is_an_answer(tmp_path: Path) -> None:
    silent = FarEnd(tmp_path / "ttyX0")
    silent.open()
    try:
        code, out, err = await _simbankd(
            "scan", "--ports", f"{tmp_path}/ttyX*", f"{tmp_path}/none*", "--timeout", "0.3"
        )
    finally:
        silent.close()
    assert code == 0, err
    assert out.splitlines()[-1] == f"no modem answered on {tmp_path}/ttyX* {tmp_path}/none*"
    assert "silent" in out
