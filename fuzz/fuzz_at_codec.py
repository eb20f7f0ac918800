"""Fuzz target: the sans-IO AT codec (``simbank.at.codec.AtCodec``).

``check(data)`` is the oracle, shared by the atheris run (fuzz/libfuzzer.py) and the default test suite
(tests/unit/test_fuzz_at.py replays every file in fuzz/regressions/at_codec/ through it).

Input layout: byte 0 picks the pending command (or none), byte 1 the line cap, byte 2 seeds the
chunk cuts; the rest is the byte stream from the modem. Properties checked:

* ``feed`` never raises and its safety net (``Garbage("codec error ...")``) is never needed;
* any chunking of the stream (random cuts, and one byte at a time) yields the same events;
* memory is bounded: the line buffer never exceeds the cap, no event carries more than the cap,
  a response keeps at most ``MAX_RESPONSE_LINES`` lines;
* every line handed up is clean text: no CR, no control characters;
* a response only ever answers the pending command, and at most once.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence

from simbank.at.codec import MAX_RESPONSE_LINES, AtCodec
from simbank.at.results import Command, Desync, Event, Garbage, Prompt, Response, Stray, Urc

COMMANDS: tuple[Command | None, ...] = (
    None,
    Command("AT"),
    Command("AT+CREG?"),
    Command("AT+CSQ", prefix="+CSQ"),
    Command("AT+CGSN"),
    Command("AT+CPIN?", prefix="+CPIN"),
    Command("AT+QCCID", prefix="+QCCID"),
    Command("AT^ICCID?", prefix="^ICCID"),
    Command("AT+CMGR=1", prefix="+CMGR"),
    Command("AT+CMGL=4", prefix="+CMGL"),
    Command('AT+CMGS="+15550100123"', prefix="+CMGS", payload="hi there\nline two"),
    Command('AT+CUSD=1,"*100#",15', prefix="+CUSD"),
    Command("ATD+15550100123;"),
    Command("AT+CLCC", prefix="+CLCC"),
    Command("AT+CEER", prefix="+CEER"),
)
MAX_LINES: tuple[int, ...] = (2, 3, 8, 16, 48, 256, 2048)
HEADER = 3
# What the codec must never hand up inside a line (same set as the codec's own check, plus CR).
_UNCLEAN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\r]")


def decode(data: bytes) -> tuple[Command | None, int, list[bytes]]:
    """(pending command, line cap, chunks of the stream) for a fuzz input."""
    head = data[:HEADER].ljust(HEADER, b"\x00")
    command = COMMANDS[head[0] % len(COMMANDS)]
    max_line = MAX_LINES[head[1] % len(MAX_LINES)]
    stream = data[HEADER:]
    rng = random.Random(head[2])
    cuts = sorted({0, len(stream), *(rng.randrange(len(stream) + 1) for _ in range(head[2] % 9))})
    chunks = [stream[a:b] for a, b in itertools.pairwise(cuts)]
    return command, max_line, chunks


def run(command: Command | None, max_line: int, chunks: Sequence[bytes]) -> list[Event]:
    """Feed ``chunks`` to a fresh codec, checking the memory bounds after every feed."""
    codec = AtCodec(max_line=max_line)
    if command is not None:
        codec.send(command)
    events: list[Event] = []
    for chunk in chunks:
        events.extend(codec.feed(chunk))
        assert len(codec._buf) <= max_line, "line buffer past its cap"
        assert codec._quoted is None or len(codec._quoted) <= max_line, "held +CUSD past cap"
        pending = codec._pending
        assert pending is None or len(pending.lines) <= MAX_RESPONSE_LINES, "response unbounded"
    return events


def _check_line(text: str, max_line: int, *, joined: bool = False) -> None:
    assert len(text) <= max_line, f"line longer than the cap: {len(text)} > {max_line}"
    # A +CUSD whose quoted text spans lines is joined with LF; nothing else may hold one.
    assert not _UNCLEAN.search(text.replace("\n", "") if joined else text), f"unclean: {text!r}"


def check_events(events: list[Event], command: Command | None, max_line: int) -> None:
    responses = 0
    for event in events:
        if isinstance(event, Garbage):
            assert not event.reason.startswith("codec error"), event
            assert len(event.raw) <= 4 * max_line, "Garbage carries more than a line"
        elif isinstance(event, Response):
            responses += 1
            assert command is not None, "an answer with no command pending"
            assert event.command is command, "an answer to another command"
            assert len(event.lines) <= MAX_RESPONSE_LINES
            for line in event.lines:
                _check_line(line, max_line, joined=True)
            _check_line(event.final.raw, max_line)
        elif isinstance(event, Urc):
            _check_line(event.text, max_line, joined=True)
            assert event.body is None or "\r" not in event.body
        elif isinstance(event, Stray):
            _check_line(event.line, max_line, joined=True)
        elif isinstance(event, Desync):
            # Answers and commands out of step (a stray final): the channel re-syncs.
            _check_line(event.line, max_line, joined=True)
        else:
            assert isinstance(event, Prompt), f"unknown event {event!r}"
            assert command is not None, "a prompt with no command pending"
            assert command.payload is not None, "a prompt for a command without payload"
    assert responses <= 1, "one command answered twice"


def check(data: bytes) -> None:
    """The oracle: raises (AssertionError or the codec's own exception) on any violation."""
    command, max_line, chunks = decode(data)
    stream = b"".join(chunks)
    whole = run(command, max_line, [stream])
    check_events(whole, command, max_line)
    assert run(command, max_line, chunks) == whole, "chunking changed the events"
    if len(stream) <= 512:
        bytewise = [stream[i : i + 1] for i in range(len(stream))]
        assert run(command, max_line, bytewise) == whole, "byte-at-a-time changed the events"
