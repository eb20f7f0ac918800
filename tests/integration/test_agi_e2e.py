"""Asterisk's side of FastAGI against the real daemon: the dialplan's ``AGI(authorize)`` gets
a device and a booking (booked before the PBX dials), the hangup handler's ``AGI(complete)``
settles it with what ``Dial()`` left, and the next call to the same number is refused by the
per-destination cap, as a ``call`` would be."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_pbx_authorize import POLICY, bank, pbx_rig

from simbank.agi.asterisk import AsteriskPeer
from simbank.config.agi import AgiConfig
from simbank.mosquitto import PrivateMosquitto, free_port

pytestmark = pytest.mark.integration

NUMBER = "+15550100123"


async def test_a_dialplan_authorizes_then_completes_over_fastagi(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    port = free_port()
    agi = AgiConfig(enabled=True, port=port)
    async with pbx_rig(tmp_path, mosquitto, base_topic, bank("quectel-ec21", 1), agi=agi) as (
        rig,
        _pbx,
    ):
        assert POLICY.calls_per_destination_per_day == 1
        granted = await AsteriskPeer().run(port, "authorize", [NUMBER, "m1", "90"])
        assert granted["SIMBANK_REFUSED"] == "", granted
        assert granted["SIMBANK_DEVICE"] == "quectel0"
        assert granted["SIMBANK_MODEM"] == "m1"
        booking, iccid = granted["SIMBANK_BOOKING"], granted["SIMBANK_ICCID"]
        assert booking
        # Booked before the PBX dials: the SIM's usage holds the 90 s reserved.
        await rig.until(lambda: rig.sim(iccid).get("usage", {}).get("call_seconds_day") == 90)
        assert rig.sim(iccid)["usage"]["calls_day"] == 1

        # The hangup handler: Dial() left ANSWER, 42 s, normal clearing.
        after_dial = {
            "SIMBANK_BOOKING": booking,
            "DIALSTATUS": "ANSWER",
            "ANSWEREDTIME": "42",
            "HANGUPCAUSE": "16",
        }
        settled = await AsteriskPeer(after_dial).run(port, "complete")
        assert settled.get("SIMBANK_ERROR", "") == "", settled
        await rig.until(lambda: rig.sim(iccid)["usage"]["call_seconds_day"] == 42)

        # The same destination again: refused as `call` would be, nothing booked.
        again = await AsteriskPeer().run(port, "authorize", [NUMBER, "m1", "90"])
        assert again["SIMBANK_REFUSED"] == "destination_cap", again
        assert again["SIMBANK_BOOKING"] == ""
        assert rig.sim(iccid)["usage"]["calls_day"] == 1
