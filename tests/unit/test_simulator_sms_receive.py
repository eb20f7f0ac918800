"""Inbound SMS on the simulated modem, driven through its command handlers: stored as the
network's SMS-DELIVER PDUs, read in PDU mode (``AT+CMGL=<stat>``, ``AT+CMGR``) and in text
mode, status reports stored in "SR", the CNMI/CSMP settings, and the text-only model.

What the modem shows is decoded with the client's ``simbank.sms.pdu.decode_pdu`` (the
simulator has its own encoders and never imports it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simbank.simulator.at_server import CommandLine
from simbank.simulator.bank import SimulatedBank
from simbank.simulator.dialects import GENERIC_TEXT_ONLY
from simbank.simulator.modem import SimulatedModem
from simbank.simulator.reports import emit_report
from simbank.simulator.scenario import Scenario, make_iccid
from simbank.sms.pdu import Deliver, StatusReport, decode_pdu
from simbank.sms.udh import Concat

ICCID = make_iccid(131)
SENDER = "+447700900131"
UCS2_TEXT = "你好，世界！这是一条测试短信。" * 10  # 150 UCS-2 characters: 3 parts of 67/67/16


@asynccontextmanager
async def started(tmp_path: Path, dialect: str = "quectel") -> AsyncIterator[SimulatedBank]:
    scenario = Scenario.model_validate(
        {
            "time_scale": 1000,
            "modems": [{"id": "m1", "dialect": dialect, "slots": [{"iccid": ICCID}]}],
        }
    )
    async with SimulatedBank(scenario, directory=tmp_path) as bank:
        yield bank


def at(modem: SimulatedModem, line: str) -> list[str]:
    """The lines and final result the modem answers ``line`` with."""
    reply = modem._handle(CommandLine(line))
    assert reply is not None
    return [*reply.lines, *([reply.final] if reply.final is not None else [])]


def pairs(lines: list[str]) -> list[tuple[str, str]]:
    """(header, PDU) pairs of a PDU-mode listing (the final result dropped)."""
    body = lines[:-1]
    return list(zip(body[::2], body[1::2], strict=True))


def delivered(pdu: str) -> Deliver:
    message = decode_pdu(pdu)
    assert isinstance(message, Deliver)
    return message


async def test_three_part_ucs2_message_listed_in_pdu_mode(tmp_path: Path) -> None:
    async with started(tmp_path) as bank:
        modem = bank.modems["m1"]
        first = bank.send_sms(ICCID, SENDER, UCS2_TEXT)
        assert sorted(bank.sim(ICCID).sms) == [first, first + 1, first + 2]
        assert at(modem, "AT+CMEE=1;+CMGF=0") == ["OK"]
        listing = pairs(at(modem, "AT+CMGL=4"))
        assert len(listing) == 3
        parts = [delivered(pdu) for _header, pdu in listing]
        assert [p.concat.sequence for p in parts if p.concat] == [1, 2, 3]
        assert len({(p.concat.reference, p.concat.total) for p in parts if p.concat}) == 1
        assert all(p.coding.value == "ucs2" and p.sender.value == SENDER for p in parts)
        assert "".join(p.text for p in parts) == UCS2_TEXT
        for (header, pdu), index in zip(listing, (first, first + 1, first + 2), strict=True):
            assert header == f"+CMGL: {index},0,,{len(pdu) // 2 - 8}"
        # listed once: read now
        again = [header for header, _pdu in pairs(at(modem, "AT+CMGL=4"))]
        assert again[0] == f"+CMGL: {first},1,,{len(listing[0][1]) // 2 - 8}"
        assert at(modem, "AT+CMGL=0") == ["OK"]
        assert len(pairs(at(modem, "AT+CMGL=1"))) == 3
        assert len(pairs(at(modem, "AT+CMGL"))) == 0  # default: received unread


@pytest.mark.parametrize("stat", ['"ALL"', '"REC UNREAD"', "5", "x"])
async def test_pdu_mode_listing_refuses_text_stats(tmp_path: Path, stat: str) -> None:
    async with started(tmp_path) as bank:
        modem = bank.modems["m1"]
        bank.send_sms(ICCID, SENDER, "hello")
        assert at(modem, f"AT+CMEE=1;+CMGF=0;+CMGL={stat}") == ["+CMS ERROR: 302"]


async def test_cmgr_in_pdu_mode_marks_read(tmp_path: Path) -> None:
    text = "Price: 5€ [ok] {x} ^~\\|"
    async with started(tmp_path) as bank:
        modem = bank.modems["m1"]
        index = bank.send_sms(ICCID, "Carrier", text)
        at(modem, "AT+CMGF=0")
        header, pdu = at(modem, f"AT+CMGR={index}")[:2]
        assert header == f"+CMGR: 0,,{len(pdu) // 2 - 8}"
        message = delivered(pdu)
        assert (message.text, message.coding.value, message.concat) == (text, "gsm7", None)
        assert (message.sender.value, message.sender.alphanumeric) == ("Carrier", True)
        assert at(modem, f"AT+CMGR={index}")[0] == f"+CMGR: 1,,{len(pdu) // 2 - 8}"
        assert at(modem, "AT+CMEE=1;+CMGR=99") == ["+CMS ERROR: 321"]


async def test_text_mode_shows_each_part_alone(tmp_path: Path) -> None:
    async with started(tmp_path) as bank:
        modem = bank.modems["m1"]
        first = bank.send_sms(ICCID, SENDER, UCS2_TEXT)
        at(modem, "AT+CMGF=1")
        lines = at(modem, 'AT+CMGL="ALL"')
        headers, texts = lines[:-1:2], lines[1:-1:2]
        assert [h.split(",")[:3] for h in headers] == [
            [f"+CMGL: {first + n}", '"REC UNREAD"', f'"{SENDER}"'] for n in range(3)
        ]
        assert [len(t) for t in texts] == [67, 67, 16]
        assert "".join(texts) == UCS2_TEXT
        read = at(modem, f"AT+CMGR={first + 2}")
        assert read[0].startswith(f'+CMGR: "REC READ","{SENDER}",,"')
        assert read[1] == UCS2_TEXT[134:]


async def test_parts_delivered_apart_share_their_reference(tmp_path: Path) -> None:
    text = "Part of a long notice from the simulated carrier. " * 8  # 400 GSM-7: 3 parts
    async with started(tmp_path) as bank:
        modem = bank.modems["m1"]
        early = bank.deliver_sms_parts(
            ICCID, SENDER, text, sequences=[1, 2], reference=0x1234, ref16=True
        )
        late = bank.deliver_sms_parts(
            ICCID, SENDER, text, sequences=[3], reference=0x1234, ref16=True
        )
        assert early == [1, 2]
        assert late == [3]
        at(modem, "AT+CMGF=0")
        parts = [delivered(pdu) for _h, pdu in pairs(at(modem, "AT+CMGL=4"))]
        assert [p.concat for p in parts] == [Concat(0x1234, 3, n, wide=True) for n in (1, 2, 3)]
        assert "".join(p.text for p in parts) == text
        with pytest.raises(ValueError, match="parts 1-3"):
            bank.deliver_sms_parts(ICCID, SENDER, text, sequences=[4])
        # a fresh message gets a new reference from the bank
        more = bank.deliver_sms_parts(ICCID, SENDER, "a" * 200)
        fresh = [delivered(pdu) for _h, pdu in pairs(at(modem, "AT+CMGL=0"))]
        assert len(more) == len(fresh) == 2
        assert {p.concat.reference for p in fresh if p.concat} != {0x1234}


async def test_cnmi_ds_csmp_and_cpms(tmp_path: Path) -> None:
    async with started(tmp_path) as bank:
        modem = bank.modems["m1"]
        assert at(modem, "AT+CMEE=1;+CNMI=2,1,0,2,0;+CNMI?") == ["+CNMI: 2,1,0,2,0", "OK"]
        assert at(modem, "AT+CNMI=2,1,0,3,0") == ["+CMS ERROR: 302"]
        assert at(modem, "AT+CSMP?") == ["+CSMP: 17,167,0,0", "OK"]
        assert at(modem, "AT+CSMP=49,167,0,0;+CSMP?") == ["+CSMP: 49,167,0,0", "OK"]
        assert at(modem, "AT+CSMP=4,167,0,0") == ["+CMS ERROR: 302"]  # not a SUBMIT
        assert at(modem, 'AT+CPMS="BM"') == ["+CMS ERROR: 302"]
        modem.reset_settings()  # ATZ / reboot
        assert at(modem, "AT+CNMI?;+CSMP?") == ["+CNMI: 2,1,0,0,0", "+CSMP: 17,167,0,0", "OK"]


async def test_status_reports_stored_in_sr(tmp_path: Path) -> None:
    submitted = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    async with started(tmp_path) as bank:
        modem = bank.modems["m1"]
        sim = bank.sim(ICCID)
        bank.send_sms(ICCID, SENDER, "an ordinary message")
        at(modem, "AT+CMGF=1;+CNMI=2,1,0,2,0")
        for reference, status in ((5, 0x00), (6, 0x41)):
            emit_report(
                modem, sim, reference=reference, destination=SENDER, submitted=submitted,
                discharged=submitted, status=status,
            )  # fmt: skip
        assert sorted(sim.reports) == [1, 2]
        assert at(modem, "AT+CPMS?")[0] == '+CPMS: "SM",1,30,"SM",1,30,"SM",1,30'
        assert at(modem, 'AT+CPMS="SR"') == ["+CPMS: 2,30,1,30,1,30", "OK"]
        stamp = '"26/03/04,05:06:07+00"'
        assert at(modem, "AT+CMGR=1") == [
            f'+CMGR: "REC UNREAD",6,5,"{SENDER}",145,{stamp},{stamp},0',
            "OK",
        ]
        assert (
            at(modem, 'AT+CMGL="ALL"')[1]
            == f'+CMGL: 2,"REC UNREAD",6,6,"{SENDER}",145,{stamp},{stamp},65'
        )
        at(modem, "AT+CMGF=0")
        header, pdu = at(modem, "AT+CMGR=2")[:2]
        report = decode_pdu(pdu)
        assert isinstance(report, StatusReport)
        assert (report.reference, report.status, report.recipient.value) == (6, 0x41, SENDER)
        assert header == f"+CMGR: 1,,{len(pdu) // 2 - 8}"
        assert at(modem, "AT+CMGD=0,4;+CPMS?")[0] == '+CPMS: "SR",0,30,"SM",1,30,"SM",1,30'
        assert len(sim.sms) == 1  # the message store is untouched
        at(modem, 'AT+CPMS="SM"')
        at(modem, "AT+CMGD=0,1")  # delete read ones: none read yet
        assert len(sim.sms) == 1


async def test_a_report_with_ds_0_or_for_another_sim_is_dropped(tmp_path: Path) -> None:
    async with started(tmp_path) as bank:
        modem = bank.modems["m1"]
        sim = bank.sim(ICCID)
        now = datetime.now(UTC)
        emit_report(
            modem, sim, reference=1, destination=SENDER, submitted=now, discharged=now, status=0
        )
        at(modem, "AT+CNMI=2,1,0,2,0")
        modem.slots[0] = None  # the SIM left the modem
        emit_report(
            modem, sim, reference=2, destination=SENDER, submitted=now, discharged=now, status=0
        )
        assert sim.reports == {}


async def test_text_only_model(tmp_path: Path) -> None:
    async with started(tmp_path, dialect="generic") as bank:
        modem = SimulatedModem(
            "t1",
            GENERIC_TEXT_ONLY,
            [bank.sim(ICCID)],
            directory=tmp_path,
            clock=bank.clock,
            carrier=bank.carrier,
            timing=bank.scenario.timing,
            imei="356938035643809",
        )
        modem.start()
        try:
            assert at(modem, "AT+CMEE=1") == ["OK"]
            assert at(modem, "AT+CMGF=?") == ["+CMGF: (1)", "OK"]
            assert at(modem, "AT+CMGF?") == ["+CMGF: 1", "OK"]
            assert at(modem, "AT+CMGF=0") == ["+CMS ERROR: 303"]
            assert at(modem, "AT+CMGF=1") == ["OK"]
            modem.reset_settings()
            assert at(modem, "AT+CMGF?") == ["+CMGF: 1", "OK"]
        finally:
            await modem.close()
        assert at(bank.modems["m1"], "AT+CMGF=?") == ["+CMGF: (0,1)", "OK"]
