"""GenericDriver reading SMS in PDU mode and setting up delivery reports, over a scripted
channel (the real AtCodec frames every answer; each command is recorded): the exact AT
sequences of 27.005 PDU-mode reading (``AT+CMGF=0``, ``AT+CMGL=4`` / ``AT+CMGR=<i>``,
``AT+CMGF=1`` after, failure or not), the ``AT+CNMI`` ladder for ``+CDS``/``+CDSI``, reading
a status report out of "SR", ``AT+CSMP`` around a text-mode send with a report requested,
and the +CDS / +CDSI URCs through ``parse_urc``.

PDUs (numbers replaced by fictional ones of the same length, nothing else changed):
ModemManager @ 9a2d5863 src/tests/test-sms-part-3gpp.c ``test_pdu_multipart`` (two GSM-7
parts, reference 0x4C; SMSC → +1 555 0100 000, sender → +1 555 0100 025); python-gsmmodem
@ 834c68b1 test/test_pdu.py ``test_decode`` (the UCS-2 "Megafon" part and the status report
of reference 214, recipient → +1 555 0100 034); see tests/unit/test_parse_cds.py.
"""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from scripted import ERROR, OK, PROMPT, ScriptedChannel
from structlog.testing import capture_logs

from simbank.at.channel import AtChannel
from simbank.at.codec import AtCodec
from simbank.at.results import Command, Urc
from simbank.drivers.generic import GenericDriver
from simbank.drivers.types import DeliveryReport, NewSms, SmsMessage
from simbank.errors import CommandError
from simbank.sms.pdu import encode_submit

NUMBER = "+447700900123"  # fictional (Ofcom drama range)

PART1 = (
    "07915155100000F0440B915155100020F5000021405291650569A00500034C0201A9E8F41C949E83C2207B59"
    "9E07B1DFEE33885E9ED341E4F23C7D7697C920FA1B54C697E5E3F4BC0C6AD7D9F434081E96D341E3303C2C4E"
    "B3D3F4BC0B94A483E6E8779D4D06CDD1EF3BA80E0785E7A0B7BB0C6A97E7F3F0B9CC02B9DF7450780EA2DFDF"
    "2C50780EA2A3CBA0BA9B5C96B3F369F71954768FDFE4B4FB0C9297E1F2F2BCECA6CF41"
)
PART2 = (
    "07915155100000F0440B915155100020F5000021405291651569320500034C0202E9E8301D44479741F0B09C3E"
    "0785E56590BCCC0ED3CB6410FD0D7ABBCBA0B0FB4D4797E52E10"
)
MEGAFON = (
    "07915155100000F0400DD0CDF2396C7EBB010008415072411084618C0500035602010053004D0053002000"
    "63006F00640065003A00200034003800350036002C00200063006F006E006600690072006D006100740069"
    "006F006E0020006F00660020006100730073006F00630069006100740069006F006E002000620065007400"
    "7700650065006E0020006100630063006F0075006E007400200061006E00640020004D00650067"
)
REPORT = "0006D60B915155100030F4111011719551401110117195714000"
SUBMIT = encode_submit(NUMBER, "a stored draft")[0].hex
BROKEN = "000ABF00"


def tpdu_length(pdu: str) -> int:
    return len(pdu) // 2 - 1 - int(pdu[:2], 16)


class ScriptedModem(ScriptedChannel):
    """``answers`` maps a command text to the modem's bytes (a missing command is answered
    OK; None is silence, an AtTimeout); a send's prompt is answered ``+CMGS: 9``."""

    def __init__(self, answers: dict[str, bytes | None] | None = None) -> None:
        self.answers = answers or {}
        super().__init__(self._reply)

    def _reply(self, command: Command) -> bytes | None:
        answer = self.answers.get(command.text, OK)
        if command.payload is not None and answer == OK:
            return PROMPT + b"\r\n+CMGS: 9\r\n" + OK
        return answer


def driver_on(modem: ScriptedModem, *, pdu_mode: bool | None = True) -> GenericDriver:
    driver = GenericDriver(cast(AtChannel, modem))
    if pdu_mode is not None:
        driver.capabilities["pdu_mode"] = pdu_mode
    return driver


def entries(*items: tuple[int, int, str]) -> bytes:
    """A PDU-mode AT+CMGL answer: (index, stat, pdu) each."""
    out = b""
    for index, stat, pdu in items:
        out += f"\r\n+CMGL: {index},{stat},,{tpdu_length(pdu)}\r\n{pdu}\r\n".encode()
    return out + OK


# -- setup and capabilities ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refused", "cnmi", "mode"),
    [
        (set(), ["AT+CNMI=2,1,0,1,0"], 1),
        ({"AT+CNMI=2,1,0,1,0"}, ["AT+CNMI=2,1,0,1,0", "AT+CNMI=2,1,0,2,0"], 2),
        (
            {"AT+CNMI=2,1,0,1,0", "AT+CNMI=2,1,0,2,0"},
            ["AT+CNMI=2,1,0,1,0", "AT+CNMI=2,1,0,2,0", "AT+CNMI=2,1,0,0,0"],
            0,
        ),
        (
            {"AT+CNMI=2,1,0,1,0", "AT+CNMI=2,1,0,2,0", "AT+CNMI=2,1,0,0,0"},
            ["AT+CNMI=2,1,0,1,0", "AT+CNMI=2,1,0,2,0", "AT+CNMI=2,1,0,0,0", "AT+CNMI=2,1"],
            0,
        ),
    ],
)
def test_setup_asks_for_delivery_reports_down_the_cnmi_ladder(
    refused: set[str], cnmi: list[str], mode: int
) -> None:
    modem = ScriptedModem(dict.fromkeys(refused, ERROR))
    driver = driver_on(modem, pdu_mode=None)
    asyncio.run(driver.setup_urcs())
    assert [t for t in modem.texts if t.startswith("AT+CNMI")] == cnmi
    assert driver.report_mode == mode
    assert driver.capabilities["delivery_reports"] is (mode > 0)
    assert "AT+CMGF=1" in modem.texts


@pytest.mark.parametrize(
    ("cmgf_test", "present"),
    [(b"\r\n+CMGF: (0,1)\r\n" + OK, True), (b"\r\n+CMGF: (1)\r\n" + OK, False), (ERROR, False)],
)
def test_pdu_mode_is_probed_at_connect_and_text_mode_kept(cmgf_test: bytes, present: bool) -> None:
    modem = ScriptedModem({"AT+CMGF=?": cmgf_test})
    driver = driver_on(modem, pdu_mode=None)

    async def connect() -> dict[str, bool]:
        await driver.setup_urcs()
        return await driver.probe_capabilities()

    caps = asyncio.run(connect())
    assert caps["pdu_mode"] is present
    assert caps["delivery_reports"] is True
    after = modem.texts[modem.texts.index("AT+CMGF=?") :]
    assert after == (["AT+CMGF=?", "AT+CMGF=0", "AT+CMGF=1"] if present else ["AT+CMGF=?"])
    modem.sent.clear()
    asyncio.run(driver.probe_capabilities())  # probed once per session
    assert "AT+CMGF=?" not in modem.texts


# -- listing ------------------------------------------------------------------------------------


def test_list_in_pdu_mode_reads_parts_ucs2_and_reports_and_skips_stored_submits() -> None:
    answer = entries((1, 1, PART1), (2, 0, PART2), (3, 1, MEGAFON), (4, 3, SUBMIT), (5, 0, REPORT))
    modem = ScriptedModem({"AT+CMGL=4": answer})
    listed = asyncio.run(driver_on(modem).list_sms())
    assert modem.texts == ["AT+CMGF=0", "AT+CMGL=4", "AT+CMGF=1"]
    assert modem.sent[1].sensitive
    assert [index for index, _ in listed] == [1, 2, 3, 5]
    first, second, megafon = (cast(SmsMessage, m) for _, m in listed[:3])
    assert (first.status, first.sender, first.concat, first.coding) == (
        "REC READ",
        "+15550100025",
        (0x4C, 2, 1),
        "gsm7",
    )
    assert (second.status, second.concat) == ("REC UNREAD", (0x4C, 2, 2))
    assert first.text + second.text == (
        "This is a very long test designed to exercise multi part capability. It should show "
        "up as one message, not as two, as the underlying encoding represents that the parts "
        "are related to one another. "
    )
    assert (megafon.sender, megafon.coding, megafon.concat) == ("Megafon", "ucs2", (0x56, 2, 1))
    report = listed[3][1]
    assert isinstance(report, DeliveryReport)
    assert (report.reference, report.outcome, report.recipient) == (
        214,
        "delivered",
        "+15550100034",
    )


def test_a_pdu_that_does_not_decode_is_listed_as_hex_and_logged_without_content() -> None:
    modem = ScriptedModem({"AT+CMGL=4": entries((9, 0, BROKEN), (10, 1, PART2))})
    with capture_logs() as logs:
        listed = asyncio.run(driver_on(modem).list_sms())
    assert [index for index, _ in listed] == [9, 10]
    kept = listed[0][1]
    assert kept == SmsMessage(
        status="REC UNREAD",
        sender=None,
        timestamp=None,
        text=BROKEN,
        raw="+CMGL: 9,0,,3",
        undecodable=True,
    )
    warned = [entry for entry in logs if entry["event"] == "sms_pdu_undecodable"]
    assert len(warned) == 1
    assert (warned[0]["index"], warned[0]["octets"], warned[0]["log_level"]) == (9, 4, "warning")
    assert BROKEN not in repr(logs)


def test_an_entry_without_its_pdu_line_is_skipped() -> None:
    modem = ScriptedModem(
        {"AT+CMGL=4": b"\r\n+CMGL: 1,0,,24\r\n" + entries((2, 0, PART2))[:-6] + OK}
    )
    with capture_logs() as logs:
        listed = asyncio.run(driver_on(modem).list_sms())
    assert [index for index, _ in listed] == [2]
    assert [entry["event"] for entry in logs] == ["sms_list_entry_unparsable"]


def test_a_failed_pdu_mode_list_still_goes_back_to_text_mode() -> None:
    modem = ScriptedModem({"AT+CMGL=4": b"\r\n+CMS ERROR: 303\r\n"})
    with pytest.raises(CommandError):
        asyncio.run(driver_on(modem).list_sms())
    assert modem.texts == ["AT+CMGF=0", "AT+CMGL=4", "AT+CMGF=1"]


def test_without_pdu_mode_listing_stays_in_text_mode_and_never_probes() -> None:
    line = b'\r\n+CMGL: 1,"REC UNREAD","+447700900454",,"07/07/05,09:56:03+08"\r\nhello\r\n'
    for pdu_mode in (False, None):
        modem = ScriptedModem({'AT+CMGL="ALL"': line + OK})
        listed = asyncio.run(driver_on(modem, pdu_mode=pdu_mode).list_sms())
        assert modem.texts == ['AT+CMGL="ALL"']
        message = cast(SmsMessage, listed[0][1])
        assert (message.sender, message.text, message.concat, message.coding) == (
            "+447700900454",
            "hello",
            None,
            None,
        )


# -- reading one --------------------------------------------------------------------------------


def test_read_in_pdu_mode() -> None:
    answer = f"\r\n+CMGR: 0,,{tpdu_length(MEGAFON)}\r\n{MEGAFON}\r\n".encode() + OK
    modem = ScriptedModem({"AT+CMGR=3": answer})
    message = asyncio.run(driver_on(modem).read_sms(3))
    assert modem.texts == ["AT+CMGF=0", "AT+CMGR=3", "AT+CMGF=1"]
    assert isinstance(message, SmsMessage)
    assert (message.status, message.sender, message.coding) == ("REC UNREAD", "Megafon", "ucs2")


def test_a_report_announced_in_sr_is_read_there_and_the_storage_restored() -> None:
    answer = f"\r\n+CMGR: 0,,{tpdu_length(REPORT)}\r\n{REPORT}\r\n".encode() + OK
    cpms = b'\r\n+CPMS: "SM",1,30,"SM",1,30,"SM",1,30\r\n' + OK
    modem = ScriptedModem({"AT+CMGR=2": answer, "AT+CPMS?": cpms})
    driver = driver_on(modem)
    report = asyncio.run(driver.read_sms(2, storage="SR"))
    assert modem.texts == [
        "AT+CPMS?",
        'AT+CPMS="SR"',
        "AT+CMGF=0",
        "AT+CMGR=2",
        "AT+CMGF=1",
        'AT+CPMS="SM"',
    ]
    assert isinstance(report, DeliveryReport)
    assert (report.reference, report.status) == (214, 0)
    modem.sent.clear()
    asyncio.run(driver.delete_sms(2, storage="SR"))
    assert modem.texts == ["AT+CPMS?", 'AT+CPMS="SR"', "AT+CMGD=2", 'AT+CPMS="SM"']


def test_a_storage_already_selected_is_not_switched() -> None:
    cpms = b'\r\n+CPMS: "SR",1,30,"SM",1,30,"SM",1,30\r\n' + OK
    modem = ScriptedModem({"AT+CPMS?": cpms})
    asyncio.run(driver_on(modem).delete_sms(4, storage="SR"))
    assert modem.texts == ["AT+CPMS?", "AT+CMGD=4"]


@pytest.mark.parametrize("storage", ["sr", '"SR"', "S", "SR,1"])
def test_a_bad_storage_name_is_refused_before_the_modem_is_asked(storage: str) -> None:
    modem = ScriptedModem()
    with pytest.raises(ValueError):
        asyncio.run(driver_on(modem).read_sms(1, storage=storage))
    assert modem.sent == []


def test_a_text_mode_read_of_a_status_report() -> None:
    line = '+CMGR: ,6,20,"07700900123",129,"13/04/29,19:58:00+04","13/04/29,19:59:00+04",0'
    modem = ScriptedModem({"AT+CMGR=57": f"\r\n{line}\r\n".encode() + OK})
    report = asyncio.run(driver_on(modem, pdu_mode=False).read_sms(57))
    assert modem.texts == ["AT+CMGR=57"]
    assert isinstance(report, DeliveryReport)
    assert (report.reference, report.outcome, report.recipient) == (20, "delivered", "07700900123")


# -- text-mode send with a report requested -----------------------------------------------------


def test_a_text_mode_send_with_a_report_sets_tp_srr_by_csmp_and_back() -> None:
    modem = ScriptedModem()
    driver = driver_on(modem, pdu_mode=False)
    assert asyncio.run(driver.send_sms(NUMBER, "hello", status_report=True)) == [9]
    assert modem.texts == ["AT+CSMP=49,167,0,0", f'AT+CMGS="{NUMBER}"', "AT+CSMP=17,167,0,0"]


def test_a_refused_csmp_sends_without_a_report_and_restores_nothing() -> None:
    modem = ScriptedModem({"AT+CSMP=49,167,0,0": ERROR})
    driver = driver_on(modem, pdu_mode=False)
    with capture_logs() as logs:
        asyncio.run(driver.send_sms(NUMBER, "hello", status_report=True))
    assert modem.texts == ["AT+CSMP=49,167,0,0", f'AT+CMGS="{NUMBER}"']
    assert any(entry["event"] == "sms_status_report_not_requested" for entry in logs)


def test_a_failed_text_mode_send_still_restores_csmp() -> None:
    modem = ScriptedModem({f'AT+CMGS="{NUMBER}"': PROMPT + b"\r\n+CMS ERROR: 500\r\n"})
    driver = driver_on(modem, pdu_mode=False)
    with pytest.raises(CommandError):
        asyncio.run(driver.send_sms(NUMBER, "hello", status_report=True))
    assert modem.texts[-1] == "AT+CSMP=17,167,0,0"


# -- URCs ---------------------------------------------------------------------------------------


def _parsed(driver: GenericDriver, data: bytes) -> list[object]:
    return [driver.parse_urc(e) for e in AtCodec().feed(data) if isinstance(e, Urc)]


def test_cds_in_both_forms_and_cdsi_reach_the_session_as_events() -> None:
    driver = driver_on(ScriptedModem())
    text_line = '+CDS: 6,20,"+447700900123",145,"13/04/29,19:58:00+04","13/04/29,19:59:00+04",70'
    data = (
        f'\r\n+CDS: {tpdu_length(REPORT)}\r\n{REPORT}\r\n\r\n{text_line}\r\n\r\n+CDSI: "SR",3\r\n'
    ).encode()
    pdu_report, text_report, stored = _parsed(driver, data)
    assert isinstance(pdu_report, DeliveryReport)
    assert (pdu_report.reference, pdu_report.outcome) == (214, "delivered")
    assert isinstance(text_report, DeliveryReport)
    assert (text_report.reference, text_report.outcome, text_report.recipient) == (
        20,
        "failed",
        NUMBER,
    )
    assert stored == NewSms("SR", 3)


def test_an_unparsable_cds_is_logged_without_killing_the_reader() -> None:
    driver = driver_on(ScriptedModem())
    with capture_logs() as logs:
        assert _parsed(driver, b"\r\n+CDS: 4\r\n000ABF00\r\n") == [None]
    assert [entry["urc"] for entry in logs if entry["event"] == "urc_unparsable"] == ["+CDS"]
