"""Inbound SMS and delivery reports as the simulated modem announces them over a real PTY:
``+CMTI`` per stored part, ``+CMT: ,<length>`` with the PDU (PDU mode, mt=2), ``+CDS`` in PDU
and text mode after a send that asked for a report, ``+CDSI`` with ``<ds>`` = 2.

PDUs are built by the client's encoder and decoded by the client's decoder
(``simbank.sms.pdu``); the simulator has its own codec.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_simulator import ICCID_A, Client, one_modem, running

from simbank.sms.pdu import Deliver, StatusReport, decode_pdu, encode_submit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

NUMBER = "+447700900141"
SENDER = "+447700900142"


async def submit_pdu(c: Client, text: str, *, status_report: bool) -> int:
    (pdu,) = encode_submit(NUMBER, text, status_report=status_report)
    await c.send(f"AT+CMGS={pdu.tpdu_length}\r".encode())
    await c.wait_prompt()
    answer = await c.cmd(pdu.hex + "\x1a")
    assert answer[-1] == "OK", answer
    return int(answer[0].removeprefix("+CMGS: "))


async def next_line(c: Client) -> str:
    return await c.expect(r".")


async def test_cmti_per_part_and_cmt_in_pdu_mode(tmp_path: Path) -> None:
    text = "Привет! Это проверка. " * 5  # 110 UCS-2 characters: 2 parts
    async with running(one_modem("quectel"), tmp_path) as (bank, c):
        assert await c.cmd("AT+CMEE=1;+CNMI=2,1,0,0,0") == ["OK"]
        first = bank.send_sms(ICCID_A, SENDER, text)
        assert await c.expect(r"^\+CMTI: ") == f'+CMTI: "SM",{first}'
        assert await c.expect(r"^\+CMTI: ") == f'+CMTI: "SM",{first + 1}'
        assert await c.cmd("AT+CMGF=0;+CNMI=2,2,0,0,0") == ["OK"]
        bank.send_sms(ICCID_A, "Carrier", "Your bonus: 5€")
        header = await c.expect(r"^\+CMT: ")
        pdu = await next_line(c)
        assert header == f"+CMT: ,{len(pdu) // 2 - 8}"
        message = decode_pdu(pdu)
        assert isinstance(message, Deliver)
        assert (message.sender.value, message.text) == ("Carrier", "Your bonus: 5€")
        assert await c.cmd("AT+CMGF=1") == ["OK"]
        bank.send_sms(ICCID_A, SENDER, "text mode")
        assert (await c.expect(r"^\+CMT: ")).startswith(f'+CMT: "{SENDER}",,"')
        assert await next_line(c) == "text mode"


async def test_cds_in_pdu_mode_after_a_report_request(tmp_path: Path) -> None:
    async with running(one_modem("simcom"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("AT+CMEE=1;+CMGF=0;+CNMI=2,1,0,1,0") == ["OK"]
        delivered = await submit_pdu(c, "hello", status_report=True)
        header = await c.expect(r"^\+CDS: ")
        pdu = await next_line(c)
        assert header == f"+CDS: {len(pdu) // 2 - 8}"
        report = decode_pdu(pdu)
        assert isinstance(report, StatusReport)
        assert (report.reference, report.recipient.value, report.status) == (delivered, NUMBER, 0)
        # the carrier makes this destination fail for good; a send without SRR gets no report
        bank.carrier.fail_delivery(NUMBER, 0x41)
        await submit_pdu(c, "no report wanted", status_report=False)
        failed = await submit_pdu(c, "this one fails", status_report=True)
        await c.expect(r"^\+CDS: ")
        report = decode_pdu(await next_line(c))
        assert isinstance(report, StatusReport)
        assert (report.reference, report.status) == (failed, 0x41)


async def test_cds_in_text_mode_after_csmp(tmp_path: Path) -> None:
    async with running(one_modem("quectel"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("AT+CMEE=1;+CMGF=1;+CNMI=2,1,0,1,0;+CSMP=49,167,0,0") == ["OK"]
        await c.send(f'AT+CMGS="{NUMBER}"\r'.encode())
        await c.wait_prompt()
        answer = await c.cmd("hello in text mode\x1a")
        reference = int(answer[0].removeprefix("+CMGS: "))
        line = await c.expect(r"^\+CDS: ")
        fields = line.removeprefix("+CDS: ").split(",")
        assert fields[:4] == ["6", str(reference), f'"{NUMBER}"', "145"]
        assert fields[-1] == "0"
        assert len(fields) == 9  # the two time stamps hold a comma each


async def test_cdsi_stores_the_report_in_sr(tmp_path: Path) -> None:
    async with running(one_modem("quectel"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("AT+CMEE=1;+CMGF=0;+CNMI=2,1,0,2,0") == ["OK"]
        reference = await submit_pdu(c, "store my report", status_report=True)
        assert await c.expect(r"^\+CDSI: ") == '+CDSI: "SR",1'
        assert await c.cmd('AT+CPMS="SR"') == ["+CPMS: 1,30,0,30,0,30", "OK"]
        header, pdu, ok = await c.cmd("AT+CMGR=1")
        assert (header, ok) == (f"+CMGR: 0,,{len(pdu) // 2 - 8}", "OK")
        report = decode_pdu(pdu)
        assert isinstance(report, StatusReport)
        assert report.reference == reference
