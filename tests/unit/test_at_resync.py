"""The codec's out-of-step evidence: stray final results, held bare answers, late answers.

Real-modem sources (see /work/shared/research/modem-realism.md): B18 (E1550/E3131/E173 "received
unexpected 'OK' every 30 sec", asterisk-chan-dongle issue 178), D8 (an error of one command read
as part of the next, ModemManager commit ede17bd4), B1 (EG25-G: ``NO CARRIER`` unsolicited after
``ATD``'s ``OK``), B15 (``+CUSD`` before ``OK``), B13 (echo).
"""

from __future__ import annotations

import itertools
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.at.codec import AtCodec
from simbank.at.results import Command, Desync, Event, Response, ResultKind, Stray, Urc
from simbank.integrations.metrics import Metrics

CSQ = Command("AT+CSQ", prefix="+CSQ")
CREG = Command("AT+CREG?", prefix="+CREG")


def feed(codec: AtCodec, *chunks: bytes) -> list[Event]:
    return [event for chunk in chunks for event in codec.feed(chunk)]


def responses(events: list[Event]) -> list[Response]:
    return [e for e in events if isinstance(e, Response)]


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (Command("AT+CSQ"), "+CSQ"),
        (Command("AT+CSQ", prefix="+CSQ"), "+CSQ"),
        (Command("AT+CREG?"), "+CREG"),
        (Command("AT^SCICHG?", prefix="^SCICHG"), "^SCICHG"),
        # SIMCom answers +ICCID:; the driver marks its vendor query as always answering
        (Command("AT+CICCID", prefix="+ICCID", answers=True), "+ICCID"),
        (Command("AT+CICCID", prefix="+ICCID"), None),  # the codec knows no vendor name
        (Command("AT+CGSN"), "+CGSN"),
        (Command("AT+CEER=?"), None),  # a test form may answer a bare OK
        (Command("AT+CEER"), None),  # empty +CEER on some firmware
        (Command("AT+CLCC", prefix="+CLCC"), None),  # no call: bare OK
        (Command("AT+CFUN=1"), None),
        (Command('AT+CUSD=1,"*100#",15', prefix="+CUSD"), None),
        (Command("ATD+15550100123;"), None),
        (Command("AT"), None),
    ],
)
def test_answer_name_is_set_only_where_a_bare_ok_is_impossible(
    command: Command, name: str | None
) -> None:
    assert command.answer_name == name


def test_final_result_with_nothing_pending_is_out_of_step() -> None:
    codec = AtCodec()
    assert feed(codec, b"\r\nOK\r\n") == [Desync("a final result with no command pending", "OK")]


def test_final_after_a_timeout_is_the_late_answer_not_a_desync() -> None:
    codec = AtCodec()
    codec.send(CREG)
    codec.abandon()
    assert feed(codec, b"\r\nOK\r\n") == [Stray("OK")]


def test_no_carrier_while_idle_is_a_call_end_urc_not_a_desync() -> None:
    # B1: EG25-G answers ATD OK at once; NO CARRIER comes later, unsolicited.
    codec = AtCodec(hold_bare=True)
    codec.send(Command("ATD+15550100123;", timeout=40))
    (dialled,) = feed(codec, b"\r\nOK\r\n")
    assert isinstance(dialled, Response)
    assert dialled.ok
    assert feed(codec, b"\r\nNO CARRIER\r\n\r\nBUSY\r\n") == [
        Urc("NO CARRIER", "NO CARRIER"),
        Urc("BUSY", "BUSY"),
    ]


def test_stray_ok_ahead_of_an_answer_is_held_and_the_command_gets_its_own() -> None:
    codec = AtCodec(hold_bare=True)
    codec.send(CSQ)
    assert feed(codec, b"\r\nOK\r\n") == []
    assert codec.holding
    events = feed(codec, b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
    assert events == [
        Desync("a final result before the answer to +CSQ", "OK"),
        Response(CSQ, ("+CSQ: 20,99",), events[1].final),  # type: ignore[union-attr]
    ]
    assert not codec.holding
    assert codec.pending is None


def test_stray_error_ahead_of_an_answer_is_held_too() -> None:
    # D8: an error fragment of one command read as the answer of the next.
    codec = AtCodec(hold_bare=True)
    codec.send(CSQ)
    events = feed(codec, b"\r\n+CME ERROR: 14\r\n\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
    assert isinstance(events[0], Desync)
    assert events[0].line == "+CME ERROR: 14"
    (response,) = responses(events)
    assert response.ok
    assert response.value() == "20,99"


def test_a_real_bare_error_settles_as_the_answer() -> None:
    codec = AtCodec(hold_bare=True)
    codec.send(Command("AT+CGSN"))
    assert feed(codec, b"\r\n+CME ERROR: 10\r\n") == []
    (response,) = codec.settle()
    assert isinstance(response, Response)
    assert response.final.kind is ResultKind.CME_ERROR
    assert response.final.code == 10


def test_sim_busy_then_the_cpin_urc_is_the_answer_and_a_urc() -> None:
    """AT+CPIN? answered CME 14 (the SIM still initialising after a slot switch), and the SIM
    comes up at once: the +CPIN: READY URC right behind it must not be taken for the answer
    (the command then waited out its 12 s timeout on every switch)."""
    codec = AtCodec(hold_bare=True)
    cpin = Command("AT+CPIN?", prefix="+CPIN")
    codec.send(cpin)
    events = feed(codec, b"\r\n+CME ERROR: 14\r\n", b"\r\n+CPIN: READY\r\n")
    assert events == []  # held: a second final would make the CME 14 a stray
    events = codec.settle()  # quiet: none came
    assert events == [
        Response(cpin, (), events[0].final),  # type: ignore[union-attr]
        Urc("+CPIN", "+CPIN: READY"),
    ]
    assert events[0].final.code == 14  # type: ignore[union-attr]
    assert not codec.holding


def test_a_bare_ok_to_a_query_settles_as_lost_and_its_late_answer_is_stray() -> None:
    codec = AtCodec(hold_bare=True)
    codec.send(CSQ)
    assert feed(codec, b"\r\nOK\r\n") == []
    (lost,) = codec.settle()
    assert isinstance(lost, Desync)
    assert lost.command is CSQ
    assert codec.pending is None
    # its own answer, after the quiet: neither a +CSQ URC nor a stray-final desync
    late = feed(codec, b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
    assert late == [Desync("a late +CSQ answer to an earlier command", "+CSQ: 20,99"), Stray("OK")]


@pytest.mark.parametrize("text", ["AT+CESQ=?", "AT+CSQ=?", "AT+CCID=?"])
def test_a_bare_ok_to_the_test_form_of_a_query_is_its_answer(text: str) -> None:
    """``AT+CESQ=?`` may answer a bare ``OK`` (the capability probe): not a lost answer (the
    probe once read it as one and published ``cesq: false`` for every modem with +CESQ)."""
    codec = AtCodec(hold_bare=True)
    command = Command(text)
    codec.send(command)
    events = feed(codec, b"\r\nOK\r\n") or codec.settle()
    (response,) = events
    assert isinstance(response, Response), events
    assert response.command is command and response.ok


def test_set_commands_are_not_held() -> None:
    codec = AtCodec(hold_bare=True)
    ussd = Command('AT+CUSD=1,"*100#",15', prefix="+CUSD")
    for command in (Command("AT+CFUN=1"), ussd, Command("AT"), Command("ATE0")):
        codec.send(command)
        (response,) = feed(codec, b"\r\nOK\r\n")
        assert isinstance(response, Response)
        assert response.command is command


def test_a_query_with_optional_lines_is_held_and_settles_as_its_answer() -> None:
    clcc = Command("AT+CLCC", prefix="+CLCC")
    codec = AtCodec(hold_bare=True)
    codec.send(clcc)
    assert feed(codec, b"\r\nOK\r\n") == []  # no call... or a stray ahead of the list
    (response,) = codec.settle()
    assert isinstance(response, Response)
    assert response.lines == ()
    # a stray ahead of the list: the list and its own final are the answer
    codec.send(clcc)
    events = feed(codec, b'\r\nOK\r\n\r\n+CLCC: 1,0,0,0,0,"+15550100123",145\r\n\r\nOK\r\n')
    assert isinstance(events[0], Desync)
    assert responses(events)[0].values() == ['1,0,0,0,0,"+15550100123",145']
    # bare, then a +CLCC URC (SIM7600 with AT+CLCC=1) before the line went quiet
    codec.send(clcc)
    urc = b'\r\n+CLCC: 1,0,6,0,0,"+15550100123",145\r\n'
    assert feed(codec, b"\r\nOK\r\n", urc) == []
    assert codec.settle() == [
        Response(clcc, (), response.final),
        Urc("+CLCC", '+CLCC: 1,0,6,0,0,"+15550100123",145'),
    ]


def test_settle_with_lines_after_the_held_final_keeps_the_command_pending() -> None:
    codec = AtCodec(hold_bare=True)
    codec.send(CSQ)
    assert feed(codec, b"\r\nOK\r\n\r\n+CSQ: 20,99\r\n") == []
    (stray,) = codec.settle()
    assert isinstance(stray, Desync)
    assert codec.pending is CSQ
    (response,) = feed(codec, b"\r\nOK\r\n")
    assert isinstance(response, Response)
    assert response.value() == "20,99"


def test_late_answer_of_the_previous_command_is_not_pinned_on_the_next() -> None:
    """The bug: AT+CSQ got the previous OK, its +CSQ line came as a URC, its OK went to the
    next command, and so on for good. Without holding (a plain codec), the late line still
    gives the shift away and the next command gets its own answer."""
    codec = AtCodec()
    codec.send(CSQ)
    (wrong,) = feed(codec, b"\r\nOK\r\n")  # a stray OK, taken for the answer
    assert isinstance(wrong, Response)
    assert wrong.lines == ()
    codec.send(CREG)
    events = feed(codec, b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n", b"\r\n+CREG: 0,1\r\n\r\nOK\r\n")
    assert events[:2] == [
        Desync("a late +CSQ answer to an earlier command", "+CSQ: 20,99"),
        Stray("OK"),
    ]
    (own,) = responses(events)
    assert own.command is CREG
    assert own.value() == "0,1"


def test_a_urc_sharing_a_prefix_is_not_a_desync() -> None:
    codec = AtCodec(hold_bare=True)
    codec.send(CREG)
    assert responses(feed(codec, b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"))[0].value() == "0,1"
    codec.send(CSQ)
    events = feed(codec, b"\r\n+CREG: 1\r\n\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
    assert not [e for e in events if isinstance(e, Desync)]
    assert events[0] == Urc("+CREG", "+CREG: 1")
    assert responses(events)[0].value() == "20,99"


def test_cusd_before_or_after_ok_is_no_desync() -> None:
    # B15: some modems send +CUSD before the OK of AT+CUSD=1,...; most after it.
    ussd = Command('AT+CUSD=1,"*100#",15', prefix="+CUSD")
    codec = AtCodec(hold_bare=True)
    codec.send(ussd)
    before = feed(codec, b'\r\n+CUSD: 0,"Balance 5.00",15\r\n\r\nOK\r\n')
    assert responses(before)[0].lines == ('+CUSD: 0,"Balance 5.00",15',)
    codec.send(ussd)
    after = feed(codec, b"\r\nOK\r\n", b'\r\n+CUSD: 0,"Balance 5.00",15\r\n')
    assert isinstance(after[0], Response)
    assert after[1] == Urc("+CUSD", '+CUSD: 0,"Balance 5.00",15')
    assert len(after) == 2


def test_final_before_the_echo_while_the_modem_echoes_is_a_stray() -> None:
    codec = AtCodec(hold_bare=True)
    codec.send(Command("ATE1"))
    assert responses(feed(codec, b"ATE1\r\r\nOK\r\n"))
    set_cmd = Command("AT+CFUN=1")
    codec.send(set_cmd)
    assert feed(codec, b"\r\nOK\r\n") == []  # before "AT+CFUN=1" came back: held
    events = feed(codec, b"AT+CFUN=1\r\r\nERROR\r\n")
    assert isinstance(events[0], Desync)
    (response,) = responses(events)
    assert response.final.kind is ResultKind.ERROR  # its own answer, not the stray OK


# -- property: one stray final anywhere never shifts the answers -----------------------

POOL: list[tuple[Command, bytes, tuple[str, ...]]] = [
    (CSQ, b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n", ("+CSQ: 20,99",)),
    (CREG, b'\r\n+CREG: 2,1,"8BE3","00002BAF"\r\n\r\nOK\r\n', ('+CREG: 2,1,"8BE3","00002BAF"',)),
    (Command("AT+COPS?", prefix="+COPS"), b'\r\n+COPS: 0,0,"Test",7\r\n\r\nOK\r\n', ('+COPS: 0,0,"Test",7',)),
    (Command("AT+CGSN"), b"\r\n350000001234560\r\n\r\nOK\r\n", ("350000001234560",)),
    (Command("AT+CFUN=1"), b"\r\nOK\r\n", ()),
    (Command("AT+CMGF=1"), b"\r\nOK\r\n", ()),
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=len(POOL) - 1), min_size=1, max_size=14),
    st.integers(min_value=0, max_value=14),
    st.sampled_from([b"\r\nOK\r\n", b"\r\nERROR\r\n", b"\r\n+CME ERROR: 14\r\n"]),
    st.integers(min_value=1, max_value=9),
)
def test_one_stray_final_at_any_point_never_shifts_the_answers(
    script: list[int], stray_at: int, stray: bytes, chunk: int
) -> None:
    """A modem answering each command as it arrives, plus one stray final result just ahead
    of the answer to command ``stray_at``; a host sending the next command the moment the
    last one completed (so a late answer races it), re-sending a command the codec gave up.
    Every command ends with the answer scripted for it."""
    codec = AtCodec(hold_bare=True)
    stream = bytearray()
    queue = deque(range(len(script)))
    current: int | None = None
    sent = 0
    got: dict[int, Response] = {}
    for _ in itertools.count():
        if codec.pending is None and queue:
            current = queue.popleft()
            command, answer, _lines = POOL[script[current]]
            codec.send(command)
            stream += (stray if sent == stray_at else b"") + answer
            sent += 1
        if stream:
            events = codec.feed(bytes(stream[:chunk]))
            del stream[:chunk]
        elif codec.holding:
            events = codec.settle()  # the line went quiet
        else:
            break
        for event in events:
            if isinstance(event, Response):
                assert current is not None
                assert current not in got
                got[current] = event
            elif isinstance(event, Desync) and event.command is not None:
                assert current is not None
                queue.appendleft(current)  # its answer was lost: ask again
    for index, pool_index in enumerate(script):
        command, _answer, lines = POOL[pool_index]
        assert got[index].command is command
        assert got[index].lines == lines, (index, got[index])
        if lines:  # a set command may take the stray for its own OK (indistinguishable)
            assert got[index].ok


def test_resyncs_are_counted_per_modem_in_metrics() -> None:
    metrics = Metrics()
    metrics.observe_resync("m1", "a final result with no command pending")
    metrics.observe_resync("m1", "a late +CSQ answer to an earlier command")
    text = metrics.exposition().decode()
    assert 'simbank_at_resyncs_total{modem="m1"} 2.0' in text


def test_a_read_form_answered_bare_is_its_answer_and_a_later_urc_stays_a_urc() -> None:
    # Gammu tests/at-creg/empty.dump: a phone answered AT+CREG? with a bare OK.
    codec = AtCodec(hold_bare=True)
    codec.send(CREG)
    assert feed(codec, b"\r\nOK\r\n\r\n\r\n") == []
    (response,) = codec.settle()
    assert isinstance(response, Response)
    assert response.lines == ()
    codec.send(CSQ)
    events = feed(codec, b"\r\n+CREG: 1\r\n\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
    assert events[0] == Urc("+CREG", "+CREG: 1")
    assert responses(events)[0].value() == "20,99"
    assert not [e for e in events if isinstance(e, Desync)]
