"""Fuzzing the AT codec, the short part: the oracle of fuzz/fuzz_at_codec.py under hypothesis, a
replay of every seed and every input that ever broke the codec (fuzz/regressions/at_codec/),
and the memory bounds stated as plain tests. The long atheris run is ``make fuzz``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.at.codec import MAX_LINE, MAX_RESPONSE_LINES, AtCodec
from simbank.at.results import Command, Garbage, Response, ResultKind, Urc

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
sys.path.append(str(FUZZ))
oracle = importlib.import_module("fuzz_at_codec")

CASES = importlib.import_module("fuzz_inputs").stored_inputs("at_codec")


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name[:16]}" for p in CASES])
def test_replay_seeds_and_regressions(path: Path) -> None:
    oracle.check(path.read_bytes())


# Real modem lines and the bytes that have been hard on line framers.
PIECES = [
    b"\r\n",
    b"\r",
    b"\n",
    b"OK",
    b"ERROR",
    b"+CME ERROR: 10",
    b"+CMS ERROR: 500",
    b"NO CARRIER",
    b"BUSY",
    b"CONNECT 9600",
    b"> ",
    b">",
    b"\x1a",
    b"\x00",
    b"\xff\xfe",
    b"\xc3\xa9",
    b'+CREG: 2,1,"8BE3","00002BAF"',
    b"+CREG: 1",
    b"+CSQ: 20,99",
    b"+CMGS: 7",
    b'+CMGR: "REC UNREAD","+15550100123",,"24/01/01,12:00:00+32"',
    b'+CMGL: 1,"REC READ","+1555",,"24/01/01,12:00:00+32"',
    b'+CMT: "+15550100123",,"24/01/01,12:00:00+32"',
    b'+CUSD: 1,"Menu',
    b'+CUSD: 0,"Balance 10.00",15',
    b'"',
    b"RING",
    b"^RSSI:15",
    b"AT+CREG?",
    b"X" * 60,
]


@settings(max_examples=300, deadline=None)
@given(
    command=st.integers(0, 255),
    cap=st.integers(0, 255),
    seed=st.integers(0, 255),
    parts=st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=8)), max_size=40),
)
def test_structured_streams_keep_every_property(
    command: int, cap: int, seed: int, parts: list[bytes]
) -> None:
    oracle.check(bytes([command, cap, seed]) + b"".join(parts))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_keep_every_property(data: bytes) -> None:
    oracle.check(data)


def test_noise_without_a_line_end_keeps_the_buffer_bounded() -> None:
    codec = AtCodec()
    garbage: list[Garbage] = []
    for _ in range(1024):  # 4 MiB of noise and not one line end
        events = codec.feed(b"\x55" * 4096)
        garbage += [e for e in events if isinstance(e, Garbage)]
        assert len(codec._buf) <= MAX_LINE
    assert len(garbage) == 1
    assert garbage[0].reason == f"line longer than {MAX_LINE} bytes"
    assert len(garbage[0].raw) == MAX_LINE
    # The line end ends the discarding; the next line is read normally.
    assert codec.feed(b"\r\nRING\r\n") == [Urc("RING", "RING")]


def test_a_response_that_never_ends_keeps_at_most_max_response_lines() -> None:
    codec = AtCodec()
    command = Command('AT+CMGL="ALL"', prefix="+CMGL")
    codec.send(command)
    garbage: list[Garbage] = []
    for n in range(MAX_RESPONSE_LINES + 500):
        garbage += [e for e in codec.feed(b"+CMGL: %d\r\n" % n) if isinstance(e, Garbage)]
        assert codec._pending is not None
        assert len(codec._pending.lines) <= MAX_RESPONSE_LINES
    assert len(garbage) == 1
    assert "later lines dropped" in garbage[0].reason
    (response,) = codec.feed(b"\r\nOK\r\n")
    assert isinstance(response, Response)
    assert response.final.kind is ResultKind.OK
    assert len(response.lines) == MAX_RESPONSE_LINES
    assert response.lines[-1] == f"+CMGL: {MAX_RESPONSE_LINES - 1}"
    # The next command starts afresh.
    codec.send(Command("AT+CSQ", prefix="+CSQ"))
    (again,) = codec.feed(b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n")
    assert isinstance(again, Response)
    assert again.lines == ("+CSQ: 20,99",)


def test_one_megabyte_of_lines_in_one_feed() -> None:
    line = b'+CREG: 2,1,"8BE3","00002BAF"\r\n'
    data = line * (1_048_576 // len(line))
    events = AtCodec().feed(data)
    assert len(events) == data.count(b"\r\n")
    assert all(isinstance(e, Urc) and e.name == "+CREG" for e in events)
