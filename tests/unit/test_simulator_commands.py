"""Any command line gets a well-formed answer and never crashes the simulated modem."""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.simulator.at_server import CommandLine
from simbank.simulator.bank import SimulatedBank
from simbank.simulator.scenario import Scenario, make_iccid

NAMES = [
    "",
    "E",
    "V",
    "Z",
    "I",
    "H",
    "D",
    "+CMEE",
    "+CGMI",
    "+CGSN",
    "+CPIN",
    "+CIMI",
    "+CCID",
    "+QCCID",
    "+CRSM",
    "+CREG",
    "+CGREG",
    "+CEREG",
    "+C5GREG",
    "+CSQ",
    "+CESQ",
    "+COPS",
    "+CFUN",
    "+CLCC",
    "+CEER",
    "+CMGF",
    "+CMGS",
    "+CNMI",
    "+CMGR",
    "+CMGD",
    "+CMGL",
    "+CPMS",
    "+CUSD",
    "+QUIMSLOT",
    "+QDSIM",
    "+CHUP",
    "+XYZ",
    "^SCICHG",
]
FINAL = re.compile(r"^(OK|ERROR|\+CME ERROR: \d+|\+CMS ERROR: \d+)$")
ARG = st.one_of(
    st.integers(min_value=-5, max_value=300).map(str),
    st.text(alphabet='0123456789+*#",;ABC', max_size=12),
)
LINE = st.builds(
    lambda name, suffix, args: f"AT{name}{suffix}{','.join(args) if suffix == '=' else ''}",
    st.sampled_from(NAMES),
    st.sampled_from(["", "?", "=?", "="]),
    st.lists(ARG, max_size=4),
)


async def _answers(tmp: Path, lines: list[str]) -> list[str | None]:
    scenario = Scenario.model_validate(
        {
            "time_scale": 1000,
            "modems": [
                {
                    "id": "m1",
                    "dialect": "quectel",
                    "slots": [{"iccid": make_iccid(1)}, {"behaviour": "absent"}],
                }
            ],
        }
    )
    async with SimulatedBank(scenario, directory=tmp) as bank:
        modem = bank.modems["m1"]
        await asyncio.sleep(0.01)
        finals = []
        for line in ["AT+CMEE=1", *lines]:
            modem.awaiting_sms = None
            reply = modem._handle(CommandLine(line))
            finals.append(None if reply is None else reply.final)
        return finals


@settings(max_examples=60, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=8))
def test_any_command_sequence_gets_a_final_result(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        finals = asyncio.run(_answers(Path(tmp), lines))
    for line, final in zip(["AT+CMEE=1", *lines], finals, strict=True):
        assert final is None or FINAL.match(final), (line, final)
        if final is None:
            assert line.upper().startswith("AT+CMGS=")
