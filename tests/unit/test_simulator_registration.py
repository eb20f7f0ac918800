"""Registration report forms for every n (pure)."""

from __future__ import annotations

import pytest

from simbank.simulator.dialects import FIBOCOM, GENERIC, QUECTEL
from simbank.simulator.registration import Cell, RegState, solicited, unsolicited

HOME = RegState(1)
DENIED = RegState(3, 7)
CELL = Cell()


@pytest.mark.parametrize(
    ("command", "n", "state", "dialect", "expected"),
    [
        ("+CREG", 0, HOME, QUECTEL, "+CREG: 0,1"),
        ("+CREG", 1, HOME, QUECTEL, "+CREG: 1,1"),
        ("+CREG", 2, HOME, QUECTEL, '+CREG: 2,1,"1A2B","0012ABCD",7'),
        ("+CREG", 3, HOME, QUECTEL, '+CREG: 3,1,"1A2B","0012ABCD",7'),
        ("+CREG", 2, DENIED, QUECTEL, "+CREG: 2,3"),
        ("+CREG", 3, DENIED, QUECTEL, "+CREG: 3,3,,,,0,7"),
        ("+CREG", 2, HOME, GENERIC, '+CREG: 2,1,"1A2B","ABCD",0'),
        ("+CGREG", 2, HOME, GENERIC, '+CGREG: 2,1,"1A2B","ABCD",0,"01"'),
        ("+CGREG", 3, DENIED, GENERIC, "+CGREG: 3,3,,,,,0,7"),
        ("+CEREG", 2, HOME, GENERIC, '+CEREG: 2,1,"1A2B","0012ABCD",7'),
        ("+C5GREG", 2, HOME, GENERIC, '+C5GREG: 2,1,"001A2B","0012ABCD",11'),
        ("+CEREG", 2, RegState(2), FIBOCOM, "+CEREG: 2,2"),
    ],
)
def test_solicited(command: str, n: int, state: RegState, dialect: object, expected: str) -> None:
    assert solicited(command, n, state, dialect, CELL) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "state", "expected"),
    [
        (0, HOME, None),
        (1, HOME, "+CEREG: 1"),
        (2, HOME, '+CEREG: 1,"1A2B","0012ABCD",7'),
        (2, DENIED, "+CEREG: 3"),
        (3, DENIED, "+CEREG: 3,,,,0,7"),
    ],
)
def test_unsolicited(n: int, state: RegState, expected: str | None) -> None:
    assert unsolicited("+CEREG", n, state, QUECTEL, CELL) == expected
