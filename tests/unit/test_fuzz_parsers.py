"""Fuzzing the driver parsers, the short part: the oracle of fuzz/fuzz_parsers.py under
hypothesis (each parser from its own valid prefix with random fields, each dialect's URC
parsing, each driver flow over a scripted channel), and a replay of every seed and every input
that ever broke a parser (fuzz/regressions/parsers/). The long atheris run is ``make fuzz``."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from simbank.errors import ProtocolGarbage

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
sys.path.append(str(FUZZ))
oracle = importlib.import_module("fuzz_parsers")

CASES = importlib.import_module("fuzz_inputs").stored_inputs("parsers")
PARSER_NAMES = [parser.name for parser in oracle.PARSERS]
FLOW_NAMES = [name for name, _ in oracle.FLOWS]


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    """The drivers log each line they drop; keep the test output to the failures."""
    with capture_logs():
        yield


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name[:16]}" for p in CASES])
def test_replay_seeds_and_regressions(path: Path) -> None:
    oracle.check(path.read_bytes())


# One AT field at a time: numbers (in and out of every range), hex, quoted text, the odd
# characters that trip str.isdigit/int() (superscripts, Arabic-Indic digits, full-width).
FIELD = st.one_of(
    st.integers(-5, 300).map(str),
    st.integers(0, 2**40).map(str),
    st.sampled_from(["", " ", '""', '"', "99", "255", "0x1F", "1F00", "FFFF", "²", "٣", "１"]),
    st.text(alphabet="0123456789ABCDEFabcdef", max_size=20),
    st.text(alphabet='0123456789,"ABCFabcf +-:;^/ \t\x00é²٣', max_size=12),
    st.text(max_size=12).map(lambda s: f'"{s}"'),
)
LINE_BODY = st.lists(FIELD, max_size=9).map(",".join)


@settings(max_examples=500, deadline=None)
@given(
    parser=st.sampled_from(PARSER_NAMES),
    prefix=st.integers(0, 15),
    body=st.one_of(LINE_BODY, st.text(max_size=40)),
    tail=st.sampled_from(["", "\nmessage text", "\nOK", ","]),
)
def test_each_parser_from_its_own_prefix_returns_or_raises_protocol_garbage(
    parser: str, prefix: int, body: str, tail: str
) -> None:
    chosen = oracle.PARSERS[PARSER_NAMES.index(parser)]
    text = chosen.prefixes[prefix % len(chosen.prefixes)] + body + tail
    with contextlib.suppress(ProtocolGarbage):  # anything else fails the test
        chosen.run(text)
    oracle.parse_urcs(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_keep_every_property(data: bytes) -> None:
    oracle.check(data)


ANSWER_PIECES = [
    b"\r\nOK\r\n",
    b"\r\nERROR\r\n",
    b"\r\n+CME ERROR: 10\r\n",
    b"\r\n+CME ERROR: 14\r\n",
    b"\r\n+CMS ERROR: 500\r\n",
    b"\r\n> ",
    b"\r\n+CPIN: READY\r\n",
    b"\r\n+CPIN: SIM PIN\r\n",
    b"\r\n+QCCID: 89860318640220133897\r\n",
    b"\r\n+CCID: 8944500102198304826\r\n",
    b'\r\n+CRSM: 144,0,"98449000102198304862"\r\n',
    b"\r\n295050902070619\r\n",
    b"\r\n867962041234567\r\n",
    b'\r\n+CREG: 2,1,"8BE3","00002BAF"\r\n',
    b"\r\n+CEREG: 1,5\r\n",
    b"\r\n+CSQ: 20,99\r\n",
    b'\r\n+COPS: 0,0,"Telstra Mobile",7\r\n',
    b"\r\n+QUIMSLOT: 2\r\n",
    b"\r\n+QDSIM: 1\r\n",
    b"\r\n+SMSIMCFG: 1,2\r\n",
    b"\r\n^SCICHG: 1,0\r\n",
    b"\r\n+GTDUALSIM: 1\r\n",
    b"\r\n+CFUN: 4\r\n",
    b'\r\n+CLCC: 1,0,0,0,0,"+15550100123",145\r\n',
    b'\r\n+CEER: "CC INFO","User busy"\r\n',
    b"\r\n+CMGS: 7\r\n",
    b'\r\n+CMGR: "REC UNREAD","+15550100123",,"24/01/01,12:00:00+32"\r\nhi\r\n',
    b'\r\n+CMGL: 1,"REC UNREAD","+15550100123",,"24/01/01,12:00:00+32"\r\nhi\r\n',
]
ANSWER = st.lists(st.one_of(st.sampled_from(ANSWER_PIECES), st.binary(max_size=6)), max_size=5).map(
    b"".join
)


@settings(max_examples=200, deadline=None)
@given(
    dialect=st.sampled_from(oracle.DIALECTS),
    flow=st.sampled_from(FLOW_NAMES),
    answers=st.lists(ANSWER, max_size=10),
)
def test_driver_flows_raise_only_domain_errors(
    dialect: type, flow: str, answers: list[bytes]
) -> None:
    # run_flow fails on any exception that is not a SimbankError, and on a flow that waits.
    oracle.run_flow(dialect, flow, answers)
