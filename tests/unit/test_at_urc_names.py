"""Vendor URC names: declared by the drivers, given to the codec; at/ knows only 27.007/27.005."""

from __future__ import annotations

import pytest

from simbank.at.channel import AtChannel
from simbank.at.codec import URC_NAMES, AtCodec
from simbank.at.results import Command, Event, Response, Urc
from simbank.drivers.base import DriverBase
from simbank.drivers.registry import DRIVERS, VENDOR_URC_NAMES

# 27.007 §7/§8/§10 and 27.005 §3.4.1 unsolicited result codes the codec knows by itself.
STANDARD = frozenset(
    {
        "+CREG", "+CGREG", "+CEREG", "+C5GREG", "+CPIN", "+CMTI", "+CMT", "+CDS", "+CDSI",
        "+CBM", "+CUSD", "+CLIP", "+CRING", "RING", "+CCWA", "+CSSI", "+CSSU", "+CIEV",
        "+CGEV", "+CTZV", "+CTZE", "+CLCC", "+CSQ", "+CFUN", "+CUSATP", "+CUSATEND",
    }
)  # fmt: skip

# (dialect, a URC of that vendor that may arrive in the middle of an answer)
VENDOR_LINES = [
    ("quectel", "RDY"),
    ("quectel", "+QUSIM: 1"),
    ("quectel", '+QIND: "csq",20,99'),
    ("simcom", "SMS DONE"),
    ("simcom", "*PSUTTZ: 24/01/01,12:00:00"),
    ("fibocom", "+SIM READY"),
    ("huawei", "^RSSI:99"),
    ("huawei", "^SIMST: 255,1"),
    ("huawei", "^CEND:1,0,104,16"),
    ("generic", "^SYSSTART"),
]


def answer_with(line: str, urc_names: frozenset[str]) -> list[Event]:
    codec = AtCodec(urc_names=urc_names)
    codec.send(Command("AT+CGMR"))
    return list(codec.feed(b"\r\nREV01\r\n\r\n" + line.encode() + b"\r\n\r\nOK\r\n"))


def test_the_codec_knows_only_the_standard_names() -> None:
    assert URC_NAMES == STANDARD


def test_every_vendor_name_is_declared_by_a_driver() -> None:
    assert frozenset().union(*(d.urc_names for d in DRIVERS.values())) == VENDOR_URC_NAMES
    assert not VENDOR_URC_NAMES & URC_NAMES
    assert DriverBase.urc_names <= VENDOR_URC_NAMES


@pytest.mark.parametrize(("dialect", "line"), VENDOR_LINES, ids=[v[1] for v in VENDOR_LINES])
def test_a_vendor_urc_is_declared_by_its_dialect(dialect: str, line: str) -> None:
    name = line.partition(":")[0]
    assert name in DRIVERS[dialect].urc_names


@pytest.mark.parametrize(("dialect", "line"), VENDOR_LINES, ids=[v[1] for v in VENDOR_LINES])
def test_a_vendor_urc_mid_answer_needs_the_drivers_names(dialect: str, line: str) -> None:
    name = line.partition(":")[0]
    command = Command("AT+CGMR")
    # Given the drivers' names (as open_port does): a URC, and the answer stays clean.
    events = answer_with(line, VENDOR_URC_NAMES)
    assert len(events) == 2
    assert events[0] == Urc(name, line)
    assert isinstance(events[1], Response)
    assert (events[1].command, events[1].lines) == (command, ("REV01",))
    # A bare codec knows no vendor: the line is part of the answer.
    bare = answer_with(line, frozenset())
    assert len(bare) == 1
    assert isinstance(bare[0], Response)
    assert bare[0].lines == ("REV01", line)


@pytest.mark.parametrize("line", sorted(STANDARD))
def test_standard_names_need_no_driver(line: str) -> None:
    if line in ("+CMT", "+CDS", "+CBM"):  # two-line URCs: header, then body
        return
    events = answer_with(f"{line}: 1" if line.startswith("+") else line, frozenset())
    assert isinstance(events[0], Urc)
    assert events[0].name == line


def test_a_channel_takes_vendor_names() -> None:
    # open_port builds AtChannel(name, urc_names=VENDOR_URC_NAMES) (tests/integration/
    # test_channel_pty.py checks it on a real port).
    channel = AtChannel("m1", urc_names=VENDOR_URC_NAMES)
    assert channel.urc_names == URC_NAMES | VENDOR_URC_NAMES
    assert AtChannel("m2").urc_names == URC_NAMES
