"""The simulator's server-side AT framing and parsing (pure)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.simulator.at_server import (
    MAX_LINE,
    AtSyntaxError,
    Command,
    CommandLine,
    Kind,
    LineFramer,
    Overflow,
    SmsCancelled,
    SmsText,
    parse_line,
    split_args,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("AT", [Command("", Kind.EXEC, (), "AT")]),
        ("at+csq", [Command("+CSQ", Kind.EXEC, (), "+csq")]),
        ("AT+CREG?", [Command("+CREG", Kind.READ, (), "+CREG?")]),
        ("AT+CREG=?", [Command("+CREG", Kind.TEST, (), "+CREG=?")]),
        ("AT+CREG=2", [Command("+CREG", Kind.SET, ("2",), "+CREG=2")]),
        ("AT^ICCID?", [Command("^ICCID", Kind.READ, (), "^ICCID?")]),
        ("ATE0", [Command("E", Kind.EXEC, ("0",), "E0")]),
        ("ATD+15550100012;", [Command("D", Kind.EXEC, ("+15550100012;",), "D+15550100012;")]),
        (
            'AT+CMGS="+15550100123"',
            [Command("+CMGS", Kind.SET, ("+15550100123",), 'AT+CMGS="+15550100123"'[2:])],
        ),
        ("ATS0=0", [Command("S0", Kind.SET, ("0",), "S0=0")]),
    ],
)
def test_parse_line(line: str, expected: list[Command]) -> None:
    assert parse_line(line) == expected


def test_concatenated_commands() -> None:
    names = [c.name for c in parse_line("ATE0V1;+CMEE=1;+CREG=2;^SCICHG?")]
    assert names == ["E", "V", "+CMEE", "+CREG", "^SCICHG"]


def test_quoted_semicolon_and_comma() -> None:
    (command,) = parse_line('AT+CUSD=1,"*100#;x,y",15')
    assert command.args == ("1", "*100#;x,y", "15")


@pytest.mark.parametrize("line", ["hello", "A", "AT+", 'AT+CMGS="', "AT!", "AT&"])
def test_garbled_lines_raise(line: str) -> None:
    with pytest.raises(AtSyntaxError):
        parse_line(line)


@given(st.text(max_size=80))
def test_parse_never_crashes_unexpectedly(line: str) -> None:
    with contextlib.suppress(AtSyntaxError):
        parse_line(line)


def test_split_args() -> None:
    assert split_args("") == ()
    assert split_args('1, "a" ,3') == ("1", "a", "3")


def test_framer_lines_backspace_and_overflow() -> None:
    framer = LineFramer()
    assert framer.feed(b"\r\nAT+CSX\x08Q\r") == [CommandLine("AT+CSQ")]
    assert framer.feed(b"A" * (MAX_LINE + 10) + b"\rAT\r") == [Overflow(), CommandLine("AT")]


def test_framer_text_mode() -> None:
    framer = LineFramer()
    framer.enter_text_mode()
    assert framer.feed(b"hi\rthere\x1aAT\r") == [SmsText("hi\rthere"), CommandLine("AT")]
    framer.enter_text_mode()
    assert framer.feed(b"oops\x1b") == [SmsCancelled()]


@given(st.binary(max_size=300), st.lists(st.integers(min_value=1, max_value=20), max_size=50))
def test_any_chunking_yields_the_same_events(data: bytes, cuts: list[int]) -> None:
    whole = LineFramer().feed(data)
    framer = LineFramer()
    chunked = []
    position = 0
    for size in cuts:
        chunked += framer.feed(data[position : position + size])
        position += size
    chunked += framer.feed(data[position:])
    assert chunked == whole
