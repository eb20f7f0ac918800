"""The inbound-call URC parsers (``RING``, ``+CRING``, ``+CLIP``) and their routing."""

from __future__ import annotations

import pytest

from simbank.drivers.parse.incoming import CallerId, Ring, parse_clip, parse_ring
from simbank.errors import ProtocolGarbage


@pytest.mark.parametrize(
    ("line", "kind", "voice"),
    [
        ("RING", None, True),
        ("+CRING: VOICE", "VOICE", True),
        ("+CRING: voice", "VOICE", True),
        ("+CRING: REL ASYNC", "REL ASYNC", False),
        ("+CRING: FAX", "FAX", False),
        ('+CRING: GPRS "IP","10.0.0.1"', 'GPRS "IP","10.0.0.1"', False),
    ],
)
def test_rings(line: str, kind: str | None, voice: bool) -> None:
    ring = parse_ring(line)
    assert ring == Ring(kind)
    assert ring.voice is voice


@pytest.mark.parametrize(
    ("line", "number", "number_type", "validity", "reason"),
    [
        ('+CLIP: "+15550100123",145,,,,0', "+15550100123", 145, 0, None),
        ('+CLIP: "+447700900456",145', "+447700900456", 145, None, None),
        ('+CLIP: "02079460123",129,"",128,"",0', "02079460123", 129, 0, None),
        ('+CLIP: "",128,,,,1', None, 128, 1, "withheld"),
        ("+CLIP: ,,,,,2", None, None, 2, "unavailable"),
        ('+CLIP: "+15550100123",145,,,,1', None, 145, 1, "withheld"),
        ('+CLIP: "",128', None, 128, None, "withheld"),
        ('+CLIP: "Private",128,,,,0', None, 128, 0, "withheld"),
    ],
)
def test_caller_ids(
    line: str, number: str | None, number_type: int | None, validity: int | None, reason: str | None
) -> None:
    caller = parse_clip(line)
    assert caller == CallerId(number, number_type, validity)
    assert caller.withheld is (number is None)
    assert caller.reason == reason


@pytest.mark.parametrize("line", ["+CRING:", "+CRING: ", "+CLIP:", '+CLIP: "+1555', "+CLIPX: 1"])
def test_garbage_is_a_protocol_error(line: str) -> None:
    with pytest.raises(ProtocolGarbage):
        parse_clip(line) if line.startswith("+CLIP") else parse_ring(line)
