"""Which SIM URCs say the card went or is not ready (the SIM becomes unknown at once) and
which say it is ready (during a switch: what we wait for; outside one: read it again)."""

from __future__ import annotations

import pytest

from simbank.at import Urc
from simbank.daemon.modem.identify import _sim_ready_urc


@pytest.mark.parametrize(
    ("text", "ready"),
    [
        ("+CPIN: READY", True),
        ("+CPIN: NOT READY", False),  # "READY" is inside "NOT READY": must not read as ready
        ("+CPIN: NOT INSERTED", False),
        ("+CPIN: SIM PIN", False),
        ("+QUSIM: 1", True),  # Quectel: the SIM (re)initialised — readiness during a switch
        ("+QUSIM: 0", False),
        ("^SIMST: 1", True),  # Huawei: valid SIM
        ("^SIMST: 0", False),
        ("^SIMST: 255", False),
        ("^SIMST:1,0", True),
        ("+SIM READY", True),
        ("+CREG: 1", True),  # not a SIM URC
    ],
)
def test_sim_urc_readiness(text: str, ready: bool) -> None:
    name = text.split(":", maxsplit=1)[0] if ":" in text else text
    assert _sim_ready_urc(Urc(name, text)) is ready
