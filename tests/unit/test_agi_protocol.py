"""The FastAGI protocol core, pure: the environment block, quoting (checked against a port of
Asterisk's own ``parse_args``), reply lines, and the scripts' channel-variable mappings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.agi import dialplan
from simbank.agi.asterisk import AsteriskPeer, environment, parse_args
from simbank.agi.protocol import (
    AgiProtocolError,
    Hangup,
    Reply,
    ReplyReader,
    command,
    get_variable,
    parse_environment,
    parse_result_line,
    printable,
    quote,
    set_variable,
    verbose,
)


def _block(script: str, args: tuple[str, ...] = ()) -> list[str]:
    return environment(script, args).decode().split("\n")[:-2]


# -- the environment ----------------------------------------------------------------------


def test_an_asterisk_block_parses() -> None:
    env = parse_environment(_block("authorize", ("+15550123", "", "300")))
    assert env.script == "authorize"
    assert env.channel == "PJSIP/agent-0000002a"
    assert env.uniqueid == "1700000000.42"
    assert env.values["agi_request"] == "agi://127.0.0.1:4573/authorize"
    assert env.values["agi_accountcode"] == ""  # "agi_accountcode: " is an empty value
    assert env.args == ("+15550123", "", "300")
    assert env.arg(1) == "+15550123"
    assert env.arg(2) is None  # AGI(url,x,,300): the empty one is absent
    assert env.arg(3) == "300"
    assert env.arg(4) is None
    assert env.arg(0) is None


@pytest.mark.parametrize(
    ("raw", "script"),
    [
        ("authorize", "authorize"),
        ("/complete/", "complete"),
        ("authorize?modem=m1", "authorize"),
        ("", ""),
    ],
)
def test_the_script_name(raw: str, script: str) -> None:
    env = parse_environment(["agi_request: agi://127.0.0.1/x", f"agi_network_script: {raw}"])
    assert env.script == script


def test_arguments_stop_at_the_first_gap() -> None:
    env = parse_environment(["agi_request: x", "agi_arg_1: a", "agi_arg_3: c"])
    assert env.args == ("a",)


def test_a_value_keeps_its_colons_and_inner_blanks() -> None:
    env = parse_environment(["agi_request: agi://h/a", "agi_calleridname: Dr: Who  Two "])
    assert env.values["agi_calleridname"] == "Dr: Who  Two "


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (["GET / HTTP/1.1", "Host: x"], "is not"),
        (["agi_request: x", "no colon here"], "is not"),
        (["agi_request: x", "AGI_CHANNEL: y"], "is not"),
        (["agi_request: x", "agi_request: y"], "repeats"),
        (["agi_channel: y"], "no agi_request"),
        ([], "no agi_request"),
        (["agi_request: x"] + [f"agi_x{n}: y" for n in range(300)], "more than"),
    ],
)
def test_a_malformed_block_is_refused(lines: list[str], why: str) -> None:
    with pytest.raises(AgiProtocolError, match=why):
        parse_environment(lines)


# -- commands and quoting -----------------------------------------------------------------

_WORD = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"),
    max_size=40,
)


@given(st.lists(_WORD, min_size=1, max_size=6))
def test_any_quoted_words_come_back_as_asterisk_splits_them(words: list[str]) -> None:
    assert parse_args(" ".join(quote(w) for w in words)) == words


@given(name=st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True), value=_WORD)
def test_set_variable_is_four_words_for_asterisk(name: str, value: str) -> None:
    line = set_variable(name, value)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert parse_args(line.decode()[:-1]) == ["SET", "VARIABLE", name, value]


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_a_line_break_cannot_be_quoted(bad: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        quote(bad)


def test_the_usual_commands() -> None:
    assert get_variable("DIALSTATUS") == b"GET VARIABLE DIALSTATUS\n"
    assert get_variable("CDR(billsec)") == b"GET VARIABLE CDR(billsec)\n"
    assert set_variable("SIMBANK_DEVICE", "quectel0") == b'SET VARIABLE SIMBANK_DEVICE "quectel0"\n'
    assert set_variable("SIMBANK_ERROR", 'say "no"') == (
        b'SET VARIABLE SIMBANK_ERROR "say \\"no\\""\n'
    )
    assert verbose("two\nlines") == b'VERBOSE "two lines" 1\n'


@pytest.mark.parametrize("name", ["", "A B", "X;Y", "CDR(billsec", "a\nb", "${X}"])
def test_a_variable_name_must_be_a_name(name: str) -> None:
    with pytest.raises(ValueError, match="not a channel variable"):
        get_variable(name)
    with pytest.raises(ValueError, match="not a channel variable"):
        set_variable(name, "x")


def test_a_command_over_the_asterisk_buffer_is_refused() -> None:
    with pytest.raises(ValueError, match="8192 bytes"):
        command("VERBOSE", quote("x" * 8190))


def test_printable() -> None:
    assert printable("a\tb\x1bc\x7f") == "a b c "
    assert printable("x" * 600) == "x" * 511 + "…"


# -- replies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("200 result=1", Reply(200, "1", None)),
        ("200 result=0", Reply(200, "0", None)),
        ("200 result=1 (quectel0)", Reply(200, "1", "quectel0")),
        ("200 result=1 ()", Reply(200, "1", "")),
        ("200 result=1 (a (b) c)", Reply(200, "1", "a (b) c")),
        ("200 result=1 (timeout) endpos=1234", Reply(200, "1", "timeout")),
        ("200 result=-1", Reply(200, "-1", None)),
        ("510 Invalid or unknown command", Reply(510)),
        ("511 Command Not Permitted on a dead channel or intercept routine", Reply(511)),
        ("520 Invalid command syntax.  Proper usage not available.", Reply(520)),
    ],
)
def test_a_reply_line(line: str, reply: Reply) -> None:
    parsed = parse_result_line(line)
    assert (parsed.code, parsed.result, parsed.value) == (reply.code, reply.result, reply.value)
    assert parsed.lines == (line,)
    assert parsed.ok is (reply.code == 200)


@pytest.mark.parametrize("line", ["", "OK", "20 result=1", "2000 x", "abc result=1", "HANGUP"])
def test_a_line_that_is_no_reply(line: str) -> None:
    with pytest.raises(AgiProtocolError, match="not an AGI reply"):
        parse_result_line(line)


def test_the_reader_joins_a_usage_message_and_notes_hangup() -> None:
    reader = ReplyReader()
    assert reader.feed("HANGUP\n") == Hangup()
    assert reader.feed("520-Invalid command syntax.  Proper usage follows:") is None
    assert reader.feed(" Usage: SET VARIABLE <variablename> <value>") is None
    usage = reader.feed("520 End of proper usage.")
    assert isinstance(usage, Reply) and usage.code == 520 and len(usage.lines) == 3
    assert reader.feed("100 result=0 Trying...") is None
    done = reader.feed("200 result=1")
    assert isinstance(done, Reply) and done.ok


def test_a_usage_message_that_never_ends_is_refused() -> None:
    reader = ReplyReader()
    reader.feed("520-Invalid command syntax.  Proper usage follows:")
    for _ in range(255):
        assert reader.feed("more usage") is None
    with pytest.raises(AgiProtocolError, match="never ends"):
        reader.feed("more usage")


# -- the fake Asterisk answers as res_agi.c does ------------------------------------------


def test_the_fake_asterisk_answers_like_res_agi() -> None:
    peer = AsteriskPeer({"DIALSTATUS": "ANSWER", "EMPTY": ""})
    assert peer.answer("GET VARIABLE DIALSTATUS") == ["200 result=1 (ANSWER)"]
    assert peer.answer("GET VARIABLE EMPTY") == ["200 result=1 ()"]
    assert peer.answer("GET VARIABLE NOPE") == ["200 result=0"]
    assert peer.answer('SET VARIABLE X "a b"') == ["200 result=1"]
    assert peer.variables["X"] == "a b"
    assert peer.answer("SET VARIABLE X a b")[0].startswith("520-")
    assert peer.answer("STREAM FILE x") == ["510 Invalid or unknown command"]


# -- the scripts' mappings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialstatus", "outcome"),
    [
        ("ANSWER", "completed"),
        ("BUSY", "busy"),
        ("NOANSWER", "no_answer"),
        ("CANCEL", "no_answer"),
        ("CONGESTION", "failed"),
        ("CHANUNAVAIL", "failed"),
        ("INVALIDARGS", "failed"),
        ("answer", "completed"),
        ("", "failed"),
        (None, "failed"),
        ("SOMETHINGNEW", "unknown"),
    ],
)
def test_dialstatus_to_outcome(dialstatus: str | None, outcome: str) -> None:
    assert dialplan.outcome_of(dialstatus) == outcome


@pytest.mark.parametrize(
    ("ms", "s", "billsec", "expected"),
    [
        ("61200", "61", "61", (62, "ANSWEREDTIME_MS")),  # a started second counts
        ("60000", "60", None, (60, "ANSWEREDTIME_MS")),
        (None, "61", "70", (61, "ANSWEREDTIME")),
        (None, None, "45", (45, "CDR(billsec)")),
        ("", "", "", (0, "none")),
        (None, None, None, (0, "none")),
        ("-5", "x", "1.5", (0, "none")),
    ],
)
def test_the_duration(
    ms: str | None, s: str | None, billsec: str | None, expected: tuple[int, str]
) -> None:
    assert dialplan.duration_of(ms, s, billsec) == expected


@pytest.mark.parametrize(
    ("raw", "cause"),
    [("16", 16), ("17", 17), ("255", 255), ("256", None), ("0", None), ("", None), (None, None)],
)
def test_the_cause(raw: str | None, cause: int | None) -> None:
    assert dialplan.cause_of(raw) == cause


def test_a_grant_sets_every_output_the_booking_last() -> None:
    answer = {
        "modem": "m1",
        "device": "quectel0",
        "iccid": "8999000000000000017",
        "booking": "b-1",
        "max_duration_s": 600,
        "expires_at": "2030-01-01T00:10:00Z",
    }
    variables = dialplan.grant(answer, None)
    assert set(variables) == set(dialplan.OUTPUTS)
    assert list(variables)[-1] == dialplan.BOOKING
    assert variables[dialplan.DEVICE] == "quectel0"
    assert variables[dialplan.MAX_DURATION] == "600"
    assert variables[dialplan.REFUSED] == variables[dialplan.ERROR] == ""
    del answer["max_duration_s"]
    assert dialplan.grant(answer, 300)[dialplan.MAX_DURATION] == "300"


@pytest.mark.parametrize(
    ("answer", "why"),
    [({"device": "quectel0"}, "no booking"), ({"booking": "b-1", "device": None}, "device key")],
)
def test_an_answer_without_booking_or_device_is_no_grant(
    answer: dict[str, object], why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        dialplan.grant(answer, None)


def test_a_refusal_clears_the_booking_first() -> None:
    variables = dialplan.refusal("quota_exhausted", "every SIM\nhas used its minutes")
    assert set(variables) == set(dialplan.OUTPUTS)
    assert next(iter(variables)) == dialplan.BOOKING
    assert variables[dialplan.REFUSED] == "quota_exhausted"
    assert variables[dialplan.ERROR] == "every SIM has used its minutes"
    assert variables[dialplan.DEVICE] == variables[dialplan.BOOKING] == ""
    assert dialplan.refusal("", "x")[dialplan.REFUSED] == dialplan.UNAVAILABLE


@pytest.mark.parametrize("raw", ["M1", "a b", "x" * 65, "m1;rm"])
def test_a_bad_modem_argument(raw: str) -> None:
    with pytest.raises(dialplan.BadArgument, match="not a modem id"):
        dialplan.parse_modem(raw)


@pytest.mark.parametrize("raw", ["0", "-1", "86401", "1.5", "ten"])
def test_a_bad_max_duration_argument(raw: str) -> None:
    with pytest.raises(dialplan.BadArgument, match="seconds"):
        dialplan.parse_max_duration(raw)


def test_good_arguments() -> None:
    assert dialplan.parse_modem("quectel-1") == "quectel-1"
    assert dialplan.parse_modem(None) is None
    assert dialplan.parse_max_duration("300") == 300
    assert dialplan.parse_max_duration(None) is None
