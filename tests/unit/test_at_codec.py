"""The sans-IO AT codec against real modem output.

Sources of the byte strings (each table row names its own):
  [MM]     ModemManager src/tests/test-modem-helpers.c (linux-mobile-broadband/ModemManager),
           registration replies as captured from the named devices.
  [EC25]   Quectel EC25 RIL log posted on forums.quectel.com/t/ec25-cme-error-13-interpretation/4797
           and forums.quectel.com/t/ec25-af-unable-to-connect-.../32381 (real sessions).
  [QDOC]   Quectel EC25&EC21 AT Commands Manual V1.3 (URC forms RDY, +CFUN: 1, +QIND, +QUSIM).
  [HW]     Huawei lines quoted in garronej/at-messages-parser README.md (captured from E-series
           sticks: ^RSSI:99, ^BOOT:..., ^SIMST, +CMGR PDU, COMMAND NOT SUPPORT).
  [SIMCOM] SIMCom SIM7500/SIM7600 Series AT Command Manual V2.00 (AT+AUTOCSQ → "+CSQ:" URC,
           SMS DONE / PB DONE boot URCs, AT+CICCID → +ICCID).
  [FIBO]   Fibocom L610 AT Commands Manual (+SIM READY, +PBREADY boot URCs).
  [27.005] 3GPP TS 27.005 §3.5.1 example (AT+CMGS prompt "> ").
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.at.codec import AtCodec
from simbank.at.results import (
    Command,
    Desync,
    Event,
    FinalResult,
    Garbage,
    Prompt,
    Response,
    ResultKind,
    Stray,
    Urc,
    line_name,
    parse_final,
)
from simbank.drivers.registry import VENDOR_URC_NAMES
from simbank.errors import CommandError, ProtocolGarbage


def run(command: Command | None, *chunks: bytes, max_line: int = 2048) -> list[Event]:
    """Feed a codec that knows the drivers' vendor URC names, as ``open_port`` sets it up."""
    codec = AtCodec(max_line=max_line, urc_names=VENDOR_URC_NAMES)
    if command is not None:
        codec.send(command)
    events: list[Event] = []
    for chunk in chunks:
        events.extend(codec.feed(chunk))
    return events


def only_response(events: list[Event]) -> Response:
    responses = [e for e in events if isinstance(e, Response)]
    assert len(responses) == 1, events
    return responses[0]


# -- solicited answers, per vendor --------------------------------------------------------

SOLICITED = [
    # (source, command, prefix, bytes, expected lines, expected final kind)
    ("MM Sony Ericsson TM-506", "AT+CREG?", "+CREG", b'\r\n+CREG: 2,1,"8BE3","00002BAF"\r\n\r\nOK\r\n', ('+CREG: 2,1,"8BE3","00002BAF"',), ResultKind.OK),
    ("MM Iridium (no space after colon)", "AT+CREG?", "+CREG", b'\r\n+CREG:002,001,"18d8","ffff"\r\n\r\nOK\r\n', ('+CREG:002,001,"18d8","ffff"',), ResultKind.OK),
    ("MM Ublox Toby-L2 on LTE", "AT+CREG?", "+CREG", b'\r\n+CREG: 2,6,"8B37","0A265185",7\r\n\r\nOK\r\n', ('+CREG: 2,6,"8B37","0A265185",7',), ResultKind.OK),
    ("MM Novatel E362 CEREG=2", "AT+CEREG?", "+CEREG", b"\r\n+CEREG: 2,1, 1F00, 20 ,79D903 ,7\r\n\r\nOK\r\n", ("+CEREG: 2,1, 1F00, 20 ,79D903 ,7",), ResultKind.OK),
    ("MM C5GREG=2", "AT+C5GREG?", "+C5GREG", b"\r\n+C5GREG: 2,1,1F00,79D903,11,6,ABCDEF\r\n\r\nOK\r\n", ("+C5GREG: 2,1,1F00,79D903,11,6,ABCDEF",), ResultKind.OK),
    ("EC25 AT+CFUN?", "AT+CFUN?", None, b"\r\n+CFUN: 1\r\n\r\nOK\r\n", ("+CFUN: 1",), ResultKind.OK),
    ("EC25 ATI (bare lines)", "ATI", None, b"\r\nQuectel\r\nEC25\r\nRevision: EC25ECGAR06A04M1G\r\n\r\nOK\r\n", ("Quectel", "EC25", "Revision: EC25ECGAR06A04M1G"), ResultKind.OK),
    ("EC25 AT+CIMI (bare)", "AT+CIMI", None, b"\r\n295050902070619\r\n\r\nOK\r\n", ("295050902070619",), ResultKind.OK),
    ("EC25 AT+COPS=?", "AT+COPS=?", "+COPS", b'\r\n+COPS: (1,"Telstra Mobile","Telstra","50501",2),(1,"vodafone AU","voda AU","50503",7),(0-4),(0-2)\r\n\r\nOK\r\n', ('+COPS: (1,"Telstra Mobile","Telstra","50501",2),(1,"vodafone AU","voda AU","50503",7),(0-4),(0-2)',), ResultKind.OK),
    ("EC25 AT+CGATT=1 refused", "AT+CGATT=1", None, b"\r\nERROR\r\n", (), ResultKind.ERROR),
    ("EC25 AT^DSCI=1 unknown", "AT^DSCI=1", None, b"\r\nERROR\r\n", (), ResultKind.ERROR),
    ("EC25 AT+CPIN? SIM failure", "AT+CPIN?", "+CPIN", b"\r\n+CME ERROR: 13\r\n", (), ResultKind.CME_ERROR),
    ("HW unknown command", "AT^FOO", None, b"\r\nCOMMAND NOT SUPPORT\r\n", (), ResultKind.ERROR),
    ("HW CMS error", 'AT+CMGS="+15550100123"', "+CMGS", b"\r\n+CMS ERROR: 301\r\n", (), ResultKind.CMS_ERROR),
    ("HW +CMGR PDU mode", "AT+CMGR=26", "+CMGR", b"\r\n+CMGR: 0,,26\r\n07913306092011F0040B913336766883F5000061216212807140074A351A8D56AB01\r\n\r\nOK\r\n", ("+CMGR: 0,,26", "07913306092011F0040B913336766883F5000061216212807140074A351A8D56AB01"), ResultKind.OK),
    ("SIMCOM AT+CICCID", "AT+CICCID", "+ICCID", b"\r\n+ICCID: 89860318640220133897\r\n\r\nOK\r\n", ("+ICCID: 89860318640220133897",), ResultKind.OK),
    ("27.007 CME text form (CMEE=2)", "AT+CPIN?", "+CPIN", b"\r\n+CME ERROR: SIM PUK required\r\n", (), ResultKind.CME_ERROR),
    ("V.250 dial failure", "ATD+15550100195;", None, b"\r\nNO ANSWER\r\n", (), ResultKind.NO_ANSWER),
    ("V.250 dial busy", "ATD+15550100190;", None, b"\r\nBUSY\r\n", (), ResultKind.BUSY),
    ("V.250 data call", "ATD*99#", None, b"\r\nCONNECT 150000000\r\n", (), ResultKind.CONNECT),
]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "text", "prefix", "data", "lines", "kind"),
    SOLICITED,
    ids=[row[0] for row in SOLICITED],
)
def test_solicited_answers(
    source: str,
    text: str,
    prefix: str | None,
    data: bytes,
    lines: tuple[str, ...],
    kind: ResultKind,
) -> None:
    events = run(Command(text, prefix=prefix), data)
    assert events == [Response(Command(text, prefix=prefix), lines, only_response(events).final)]
    response = only_response(events)
    assert response.lines == lines
    assert response.final.kind is kind


@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_same_answer_whatever_the_chunk_size(chunk: int) -> None:
    data = SOLICITED[0][3]
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    assert run(Command("AT+CREG?"), *pieces) == run(Command("AT+CREG?"), data)


# -- final results ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("OK", FinalResult(ResultKind.OK, None, "OK")),
        ("ERROR", FinalResult(ResultKind.ERROR, None, "ERROR")),
        ("+CME ERROR: 10", FinalResult(ResultKind.CME_ERROR, 10, "+CME ERROR: 10")),
        ("+CME ERROR:10", FinalResult(ResultKind.CME_ERROR, 10, "+CME ERROR:10")),
        ("+CME ERROR: SIM not inserted", FinalResult(ResultKind.CME_ERROR, 10, "+CME ERROR: SIM not inserted")),
        ("+CME ERROR: SIM PUK required", FinalResult(ResultKind.CME_ERROR, 12, "+CME ERROR: SIM PUK required")),
        ("+CME ERROR: operation not allowed", FinalResult(ResultKind.CME_ERROR, 3, "+CME ERROR: operation not allowed")),
        ("+CME ERROR: 262", FinalResult(ResultKind.CME_ERROR, 262, "+CME ERROR: 262")),
        ("+CME ERROR: some vendor text", FinalResult(ResultKind.CME_ERROR, None, "+CME ERROR: some vendor text")),
        ("+CMS ERROR: 500", FinalResult(ResultKind.CMS_ERROR, 500, "+CMS ERROR: 500")),
        ("+CMS ERROR: SMSC address unknown", FinalResult(ResultKind.CMS_ERROR, 330, "+CMS ERROR: SMSC address unknown")),
        ("NO CARRIER", FinalResult(ResultKind.NO_CARRIER, None, "NO CARRIER")),
        ("NO DIALTONE", FinalResult(ResultKind.NO_DIALTONE, None, "NO DIALTONE")),
        ("CONNECT", FinalResult(ResultKind.CONNECT, None, "CONNECT")),
        ("TOO MANY PARAMETERS", FinalResult(ResultKind.ERROR, None, "TOO MANY PARAMETERS")),
        ("+CREG: 1", None),
        ("OKAY", None),
        ("CONNECTED", None),
    ],
)  # fmt: skip
def test_parse_final(line: str, expected: FinalResult | None) -> None:
    assert parse_final(line) == expected


def test_final_ok_property() -> None:
    results = [parse_final(line) for line in ("OK", "CONNECT 9600", "NO CARRIER", "ERROR")]
    assert [r.ok if r else None for r in results] == [True, True, False, False]


@pytest.mark.parametrize(
    ("line", "name"),
    [("+CREG: 1", "+CREG"), ("^RSSI:99", "^RSSI"), ("RING", "RING"), ("+SIM READY", "+SIM READY"), ("SMS DONE", "SMS DONE"), ("+QIND: PB DONE", "+QIND")],
)  # fmt: skip
def test_line_name(line: str, name: str) -> None:
    assert line_name(line) == name


# -- echo ---------------------------------------------------------------------------------


def test_echo_on_is_dropped() -> None:
    # [EC25] with ATE1 the modem repeats the command, terminated by its own CR.
    events = run(Command("AT+CFUN?"), b"AT+CFUN?\r\r\n+CFUN: 1\r\n\r\nOK\r\n")
    assert only_response(events).lines == ("+CFUN: 1",)
    assert len(events) == 1


def test_echo_off_and_echo_on_give_the_same_response() -> None:
    on = run(Command("AT+CIMI"), b"AT+CIMI\r\r\n295050902070619\r\n\r\nOK\r\n")
    off = run(Command("AT+CIMI"), b"\r\n295050902070619\r\n\r\nOK\r\n")
    assert on == off


@pytest.mark.parametrize(
    "data",
    [
        b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n",  # V.250 default S3/S4
        b"\r+CSQ: 20,99\r\rOK\r",  # bare CR (S4 = 0)
        b"\n+CSQ: 20,99\n\nOK\n",  # bare LF
        b"+CSQ: 20,99\r\n\r\n\r\n\r\nOK\r\n",  # extra blank lines
    ],
)
def test_line_terminators(data: bytes) -> None:
    response = only_response(run(Command("AT+CSQ", prefix="+CSQ"), data))
    assert response.lines == ("+CSQ: 20,99",)
    assert response.value() == "20,99"


# -- URCs ---------------------------------------------------------------------------------


def test_urc_in_the_middle_of_a_response() -> None:
    # [EC25]/[QDOC] a +QIND and a +CREG arrive between the info line and OK.
    events = run(
        Command("AT+CSQ", prefix="+CSQ"),
        b"\r\n+CSQ: 24,99\r\n\r\n+QIND: PB DONE\r\n\r\n+CREG: 1\r\n\r\nOK\r\n",
    )
    assert events == [
        Urc("+QIND", "+QIND: PB DONE"),
        Urc("+CREG", "+CREG: 1"),
        Response(Command("AT+CSQ", prefix="+CSQ"), ("+CSQ: 24,99",), FinalResult(ResultKind.OK, None, "OK")),
    ]  # fmt: skip


def test_solicited_creg_vs_unsolicited_creg() -> None:
    # [MM] "+CREG: 2,1,..." answers AT+CREG?; "+CREG: 1,8BE3,2BAF" (Huawei E160G) is a URC
    # when AT+CGSN is pending.
    solicited = run(
        Command("AT+CREG?", prefix="+CREG"), b'\r\n+CREG: 2,1,"8BE3","00002BAF"\r\n\r\nOK\r\n'
    )
    assert only_response(solicited).value() == '2,1,"8BE3","00002BAF"'
    unsolicited = run(
        Command("AT+CGSN"), b"\r\n+CREG: 1,8BE3,2BAF\r\n\r\n350000001234560\r\n\r\nOK\r\n"
    )
    assert unsolicited[0] == Urc("+CREG", "+CREG: 1,8BE3,2BAF")
    assert only_response(unsolicited).lines == ("350000001234560",)
    assert only_response(unsolicited).value() == "350000001234560"


def test_read_command_claims_its_own_prefix_without_an_explicit_one() -> None:
    events = run(Command("AT+CPIN?"), b"\r\n+CPIN: READY\r\n\r\nOK\r\n")
    assert only_response(events).value() == "READY"


def test_set_command_does_not_claim_its_urc() -> None:
    # AT+CREG=2 answers OK; a +CREG line meanwhile is the URC it just enabled.
    events = run(Command("AT+CREG=2"), b'\r\n+CREG: 2,"8BE3","2BAF"\r\n\r\nOK\r\n')
    assert isinstance(events[0], Urc)
    assert only_response(events).lines == ()


def test_autocsq_urc_while_another_command_is_pending() -> None:
    # [SIMCOM] AT+AUTOCSQ=1,1 makes the modem report "+CSQ: <rssi>,<ber>" by itself.
    events = run(
        Command("AT+CICCID", prefix="+ICCID"),
        b"\r\n+CSQ: 17,99\r\n\r\n+ICCID: 89860318640220133897\r\n\r\nOK\r\n",
    )
    assert events[0] == Urc("+CSQ", "+CSQ: 17,99")
    assert only_response(events).value() == "89860318640220133897"


BOOT_URCS = [
    # (source, line, name)
    ("QDOC", "RDY", "RDY"),
    ("QDOC", "+CFUN: 1", "+CFUN"),
    ("QDOC", "+CPIN: READY", "+CPIN"),
    ("QDOC", "+QUSIM: 1", "+QUSIM"),
    ("QDOC", "+QIND: SMS DONE", "+QIND"),
    ("QDOC", '+QIND: "csq",20,99', "+QIND"),
    ("SIMCOM", "SMS DONE", "SMS DONE"),
    ("SIMCOM", "PB DONE", "PB DONE"),
    ("FIBO", "+SIM READY", "+SIM READY"),
    ("FIBO", "+PBREADY", "+PBREADY"),
    ("HW", "^RSSI:99", "^RSSI"),
    ("HW", "^BOOT:20952548,0,0,0,72", "^BOOT"),
    ("HW", "^SIMST: 255,1", "^SIMST"),
    ("HW", "^SRVST: 0", "^SRVST"),
    ("HW", '+CMTI: "SM",26', "+CMTI"),
    ("27.007", "RING", "RING"),
    ("27.007", "+CRING: VOICE", "+CRING"),
    ("27.007", '+CUSD: 0,"Balance 10.00",15', "+CUSD"),
]


@pytest.mark.parametrize(("source", "line", "name"), BOOT_URCS, ids=[r[1] for r in BOOT_URCS])
def test_vendor_urcs_mid_response(source: str, line: str, name: str) -> None:
    command = Command("AT+CGMR")
    data = b"\r\nEC25EFAR06A11M4G\r\n\r\n" + line.encode() + b"\r\n\r\nOK\r\n"
    events = run(command, data)
    assert events[0] == Urc(name, line)
    assert only_response(events).lines == ("EC25EFAR06A11M4G",)


@pytest.mark.parametrize(("source", "line", "name"), BOOT_URCS, ids=[r[1] for r in BOOT_URCS])
def test_everything_is_a_urc_when_idle(source: str, line: str, name: str) -> None:
    assert run(None, b"\r\n" + line.encode() + b"\r\n") == [Urc(name, line)]


def test_unknown_line_when_idle_is_a_urc_named_by_its_head() -> None:
    assert run(None, b"\r\n+WTF: iam not a known message\r\n") == [Urc("+WTF", "+WTF: iam not a known message")]  # fmt: skip


def test_two_line_urc_cmt_keeps_the_response_intact() -> None:
    # 27.005 §3.4.1 text mode +CMT: header line then the message text.
    events = run(
        Command("AT+CSQ", prefix="+CSQ"),
        b'\r\n+CSQ: 20,99\r\n\r\n+CMT: "+15550100123",,"24/01/01,12:00:00+32"\r\nOK then\r\n\r\nOK\r\n',
    )
    assert events[0] == Urc("+CMT", '+CMT: "+15550100123",,"24/01/01,12:00:00+32"', "OK then")
    assert only_response(events).lines == ("+CSQ: 20,99",)


def test_cmgr_text_body_is_taken_verbatim_even_if_it_looks_like_a_result() -> None:
    events = run(
        Command("AT+CMGR=3", prefix="+CMGR"),
        b'\r\n+CMGR: "REC UNREAD","+15550100123",,"24/01/01,12:00:00+32"\r\nOK\r\n\r\nOK\r\n',
    )
    assert only_response(events).lines[1] == "OK"


def test_call_results_are_urcs_unless_a_dial_is_pending() -> None:
    # modems.md: ATD...; answers OK at once, NO CARRIER comes later as a URC.
    assert run(None, b"\r\nNO CARRIER\r\n") == [Urc("NO CARRIER", "NO CARRIER")]
    events = run(Command("AT+CLCC"), b"\r\nBUSY\r\n\r\nOK\r\n")
    assert events[0] == Urc("BUSY", "BUSY")
    assert only_response(events).final.kind is ResultKind.OK


# -- stray, prompt, garbage ----------------------------------------------------------------


def test_lone_ok_and_error_when_idle_are_out_of_step() -> None:
    reason = "a final result with no command pending"
    assert run(None, b"\r\nOK\r\n\r\nERROR\r\n") == [Desync(reason, "OK"), Desync(reason, "ERROR")]


def test_late_reply_after_abandon_is_stray() -> None:
    codec = AtCodec()
    codec.send(Command("AT+COPS?", prefix="+COPS"))
    codec.abandon()
    events = codec.feed(b'\r\n+COPS: 0,0,"Telstra",7\r\n\r\n+CREG: 1\r\n\r\nOK\r\n')
    assert events == [Stray('+COPS: 0,0,"Telstra",7'), Urc("+CREG", "+CREG: 1"), Stray("OK")]
    assert codec.pending is None


def test_sms_prompt_then_payload() -> None:
    # [27.005] AT+CMGS="<da>" → "\r\n> " (no terminator) → text + Ctrl-Z → +CMGS: <mr> OK.
    command = Command('AT+CMGS="+15550100123"', prefix="+CMGS", payload="hello", sensitive=True)
    codec = AtCodec()
    assert codec.send(command) == b'AT+CMGS="+15550100123"\r'
    assert codec.feed(b'AT+CMGS="+15550100123"\r\r\n> ') == [Prompt()]
    assert codec.payload() == b"hello\x1a"
    events = codec.feed(b"hello\x1a\r\n+CMGS: 12\r\n\r\nOK\r\n")  # echo on repeats the text
    assert only_response(events).value() == "12"


def test_prompt_split_across_chunks() -> None:
    command = Command('AT+CMGS="+15550100123"', prefix="+CMGS", payload="hi")
    assert run(command, b"\r\n>", b" ") == [Prompt()]


def test_prompt_only_recognised_for_a_payload_command() -> None:
    # "> " without a payload command pending is just the start of a line.
    events = run(Command("AT+CSQ"), b"\r\n> \r\nOK\r\n")
    assert only_response(events).lines == (">",)


def test_overlong_line_is_garbage_and_the_stream_recovers() -> None:
    events = run(
        Command("AT+CSQ", prefix="+CSQ"),
        b"\r\n" + b"A" * 100 + b"\r\n+CSQ: 5,99\r\nOK\r\n",
        max_line=32,
    )
    assert events[0] == Garbage(b"A" * 32, "line longer than 32 bytes")
    assert only_response(events).value() == "5,99"


def test_undecodable_and_control_noise_is_garbage() -> None:
    events = run(None, b"\xff\xfe\x80\r\n\x00\x01RDY\r\nRDY\r\n")
    assert events == [
        Garbage(b"\xff\xfe\x80", "not UTF-8"),
        Garbage(b"\x00\x01RDY", "control characters"),
        Urc("RDY", "RDY"),
    ]


# -- Response helpers ---------------------------------------------------------------------


def test_value_values_and_raise_for_error() -> None:
    ok = only_response(run(Command("AT+CMGL", prefix="+CMGL"), b"\r\n+CMGL: 1,0,,22\r\nPDU1\r\n+CMGL: 2,0,,22\r\nPDU2\r\n\r\nOK\r\n"))  # fmt: skip
    assert ok.values() == ["1,0,,22", "2,0,,22"]
    assert ok.raise_for_error() is ok
    with pytest.raises(ProtocolGarbage):
        ok.value("+CSQ")
    failed = only_response(run(Command("AT+CPIN?"), b"\r\n+CME ERROR: 10\r\n"))
    with pytest.raises(CommandError) as info:
        failed.raise_for_error()
    assert info.value.code == 10
    assert info.value.raw == "+CME ERROR: 10"
    assert "SIM not inserted" in str(info.value)


def test_send_refuses_a_second_command_and_bad_text() -> None:
    codec = AtCodec()
    codec.send(Command("AT"))
    with pytest.raises(RuntimeError):
        codec.send(Command("AT"))
    codec.abandon()
    with pytest.raises(ValueError):
        codec.send(Command("AT\r+CSQ"))
    assert codec.pending is None


# -- properties ---------------------------------------------------------------------------

STREAM = (
    b'AT+CMGS="+15550100123"\r\r\n> hi\x1a\r\n+CREG: 1\r\n+CMGS: 7\r\n\r\nOK\r\n'
    b'\r\nRING\r\n\r\n+CMT: "+15550100123",,"24/01/01,12:00:00+32"\r\nbody\r\n'
    b'+CUSD: 1,"Menu\r\n1. Balance",15\r\n'
    b"\xff\x00junk\r\n" + b"X" * 80 + b"\r\nOK\r\n\rNO CARRIER\n"
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
def test_any_chunking_yields_the_same_events(cuts: list[int]) -> None:
    command = Command('AT+CMGS="+15550100123"', prefix="+CMGS", payload="hi")
    bounds = sorted({0, len(STREAM), *cuts})
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert run(command, *chunks, max_line=64) == run(command, STREAM, max_line=64)


FRAGMENTS = [
    *(row[3] for row in SOLICITED),
    *(b"\r\n" + row[1].encode() + b"\r\n" for row in BOOT_URCS),
    b"AT+CREG?\r",
    b"\r\n> ",
    b'+CUSD: 1,"a\r\nb",15\r\n',
    b'+CMT: "+15550100123",,"24/01/01,12:00:00+32"\r\n',
    b"\r\nOK\r\n",
    b"\xff\x00",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=6)), max_size=25),
    st.lists(st.integers(min_value=0, max_value=4000), max_size=40),
    st.sampled_from(
        [None, Command("AT+CREG?"), Command("AT+CMGS=1", payload="x"), Command("ATD1;")]
    ),
)
def test_any_chunking_of_any_stream_yields_the_same_events(
    parts: list[bytes], cuts: list[int], command: Command | None
) -> None:
    stream = b"".join(parts)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    assert run(command, *chunks, max_line=48) == run(command, stream, max_line=48)
    bytewise = [stream[i : i + 1] for i in range(len(stream))]
    assert run(command, *bytewise, max_line=48) == run(command, stream, max_line=48)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from([b"\r", b"\n", b"> ", b"OK", b"+CMT: x", b"AT", b"\x1a"]),
        ),
        max_size=40,
    ),
    st.booleans(),
)
def test_arbitrary_bytes_never_raise(chunks: list[bytes], pending: bool) -> None:
    codec = AtCodec(max_line=16)
    if pending:
        codec.send(Command("AT+CMGS=1", payload="x"))
    for chunk in chunks:
        for event in codec.feed(chunk):
            assert isinstance(event, Response | Urc | Prompt | Garbage | Stray | Desync)
            # the codec's own safety net must never be needed
            assert not (isinstance(event, Garbage) and event.reason.startswith("codec error"))


def test_ussd_text_spanning_lines_is_one_urc() -> None:
    # 27.007 §7.15: <str> is a quoted string; operators put line breaks in USSD menus.
    data = b'\r\n+CUSD: 1,"Menu\r\n1. Balance\r\n2. Bundles",15\r\n'
    assert run(None, data) == [Urc("+CUSD", '+CUSD: 1,"Menu\n1. Balance\n2. Bundles",15')]


def test_unterminated_ussd_quote_does_not_swallow_the_final_result() -> None:
    events = run(Command('AT+CUSD=1,"*100#",15'), b'\r\n+CUSD: 0,"broken\r\nOK\r\n')
    assert events[0] == Urc("+CUSD", '+CUSD: 0,"broken')
    assert only_response(events).final.kind is ResultKind.OK


def test_internal_error_becomes_garbage_and_the_stream_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = AtCodec()
    original = AtCodec._line

    def explode_once(self: AtCodec, line: str, verbatim: str) -> None:
        monkeypatch.setattr(AtCodec, "_line", original)
        raise KeyError(line)

    monkeypatch.setattr(AtCodec, "_line", explode_once)
    events = codec.feed(b"\r\nboom\r\nRDY\r\n")
    assert events == [Garbage(b"boom", "codec error: KeyError('boom')"), Urc("RDY", "RDY")]
