"""PDU-mode sending to the simulated modem over a real PTY with plain pyserial.

The PDUs come from the client's encoder (``simbank.sms.pdu.encode_submit``); the modem decodes
them with its own decoder (``simbank.simulator.pdu``) and records what reached the network.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_simulator import ICCID_A, Client, one_modem, running, scenario

from simbank.simulator.carrier import SmsSegment
from simbank.sms.pdu import encode_submit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

NUMBER = "+447700900123"


async def submit(c: Client, length: int, payload: str) -> list[str]:
    await c.send(f"AT+CMGS={length}\r".encode())
    await c.wait_prompt()
    return await c.cmd(payload + "\x1a")


async def test_cmgf_modes(tmp_path: Path) -> None:
    async with running(one_modem("quectel"), tmp_path) as (_bank, c):
        assert await c.cmd("AT+CMGF=?") == ["+CMGF: (0,1)", "OK"]
        assert await c.cmd("AT+CMGF=0") == ["OK"]
        assert await c.cmd("AT+CMGF?") == ["+CMGF: 0", "OK"]
        assert await c.cmd("AT+CMGF=1") == ["OK"]
        assert await c.cmd("AT+CMGF?") == ["+CMGF: 1", "OK"]
        assert await c.cmd("AT+CMEE=1;+CMGF=2") == ["+CMS ERROR: 302"]


async def test_two_part_pdu_send_is_recorded_per_segment(tmp_path: Path) -> None:
    text = "You have been selected for a simulated prize. " * 4  # 184 GSM-7 chars: 2 parts
    pdus = encode_submit(NUMBER, text, reference=77, status_report=True)
    assert len(pdus) == 2
    async with running(one_modem("simcom"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("AT+CMEE=1;+CMGF=0") == ["OK"]
        answers = [await submit(c, p.tpdu_length, p.hex) for p in pdus]
        assert answers == [["+CMGS: 1", "OK"], ["+CMGS: 2", "OK"]]
        segments = bank.carrier.stats.sms_segments_by_iccid[ICCID_A]
        assert [(s.destination, s.concat, s.coding, s.status_report) for s in segments] == [
            (NUMBER, (77, 2, 1), "gsm7", True),
            (NUMBER, (77, 2, 2), "gsm7", True),
        ]
        assert [s.message_reference for s in segments] == [1, 2]
        assert "".join(s.text for s in segments) == text
        # counted as two SMS by that SIM, as text mode counts one
        assert bank.carrier.stats.sms == 2
        assert bank.carrier.stats.sms_by_iccid[ICCID_A] == 2
        assert [n for n, _ in bank.modems["m1"].sent_sms] == [NUMBER, NUMBER]
        # a UCS-2 text, one segment
        (single,) = encode_submit(NUMBER, "你好，世界")
        assert await submit(c, single.tpdu_length, single.hex) == ["+CMGS: 3", "OK"]
        assert segments[-1] == SmsSegment(
            NUMBER, "你好，世界", "ucs2", None, False, 3, segments[-1].at
        )


async def test_malformed_pdu_gets_cms_error_and_is_not_counted(tmp_path: Path) -> None:
    (good,) = encode_submit(NUMBER, "hello")
    async with running(one_modem("quectel"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("AT+CMEE=1;+CMGF=0") == ["OK"]
        assert await submit(c, good.tpdu_length + 1, good.hex) == ["+CMS ERROR: 304"]
        assert await submit(c, good.tpdu_length, good.hex[:-1]) == ["+CMS ERROR: 304"]
        assert await submit(c, good.tpdu_length, "00" + good.hex[2:-2] + "ZZ") == [
            "+CMS ERROR: 304"
        ]
        assert await c.cmd("AT+CMGS=0") == ["+CMS ERROR: 304"]
        assert bank.carrier.stats.sms == 0
        assert not bank.carrier.stats.sms_segments_by_iccid[ICCID_A]
        # the modem is still fine: the good PDU goes through, and ESC cancels a prompt
        assert await submit(c, good.tpdu_length, good.hex) == ["+CMGS: 1", "OK"]
        await c.send(f"AT+CMGS={good.tpdu_length}\r".encode())
        await c.wait_prompt()
        assert await c.cmd(good.hex + "\x1b") == ["OK"]
        assert bank.carrier.stats.sms == 1


async def test_carrier_limit_applies_per_segment(tmp_path: Path) -> None:
    sc = scenario(
        [{"id": "m1", "dialect": "quectel", "slots": [{"iccid": ICCID_A}]}],
        carrier={"test": {"sms_per_day": 2, "action": "bar"}},
    )
    pdus = encode_submit(NUMBER, "x" * 400)  # 3 segments
    async with running(sc, tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("AT+CMEE=1;+CMGF=0") == ["OK"]
        answers = [await submit(c, p.tpdu_length, p.hex) for p in pdus]
        assert answers == [["+CMGS: 1", "OK"], ["+CMGS: 2", "OK"], ["+CMS ERROR: 500"]]
        assert bank.carrier.stats.blocks[0].reason == "sms_per_day"
        assert len(bank.carrier.stats.sms_segments_by_iccid[ICCID_A]) == 2
