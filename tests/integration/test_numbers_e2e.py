"""Numbers reach the modem as E.164 with the '+': daemon + simulated modem on a PTY + mosquitto.

Before, ``call`` to +442079460123 went out as ``ATD442079460123;`` — a national number to the
network, somebody else's phone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bankrig import running

from simbank.config.models import ComplianceConfig, PolicyConfig
from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.at_server import CommandLine
from simbank.simulator.modem import SimulatedModem
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

LONDON = "+442079460123"  # Ofcom's drama range: valid to libphonenumber, reaches nobody


@pytest.fixture
def at_lines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every command line the simulated modems received, as sent over the PTY."""
    lines: list[str] = []
    handle = SimulatedModem._handle

    def recording(self: SimulatedModem, event: Any) -> Any:
        if isinstance(event, CommandLine):
            lines.append(event.text)
        return handle(self, event)

    monkeypatch.setattr(SimulatedModem, "_handle", recording)
    return lines


def _scenario() -> Scenario:
    return Scenario(
        timing=Timing(boot_s=0.5, sim_init_s=0.3, ring_s=0.1, talk_s=30),
        modems=[
            ModemSpec(
                id="m1",
                dialect="quectel",
                slots=[
                    SimSpec(iccid=make_iccid(880 + n), registration_delay_s=0.2) for n in (0, 1)
                ],
            )
        ],
    )


def _sent(lines: list[str], prefix: str) -> list[str]:
    return [line for line in lines if line.upper().startswith(prefix)]


def _delivered_to(rig: Any) -> list[str]:
    """Where the simulated network saw each SMS go (decoded from what the modem was sent)."""
    return [to for modem in rig.bank.modems.values() for to, _ in modem.sent_sms]


async def test_numbers_reach_the_modem_as_e164_with_the_plus(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, at_lines: list[str]
) -> None:
    compliance = ComplianceConfig(default_region="GB")
    policy = PolicyConfig(quiet_hours=[], min_call_gap_s=0, calls_per_destination_per_day=10)
    async with running(
        tmp_path, mosquitto, base_topic, _scenario(), compliance=compliance, policy=policy
    ) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)

        call = await rig.request("call", {"number": LONDON, "max_duration_s": 1})
        assert call["status"] == "ok", call
        assert call["data"]["outcome"] == "completed"
        assert _sent(at_lines, "ATD") == [f"ATD{LONDON};"]

        sms = await rig.request("sms/send", {"number": LONDON, "text": "hello"})
        assert sms["status"] == "ok", sms
        # PDU mode: the number travels inside the SMS-SUBMIT, international (type 145), and
        # the simulated network reads it back with its "+".
        assert len(_sent(at_lines, "AT+CMGS")) == 1
        assert _delivered_to(rig) == [LONDON]

        # A national spelling, read in the default region, goes out the same way.
        national = await rig.request("call", {"number": "020 7946 0123", "max_duration_s": 1})
        assert national["status"] == "ok", national
        assert _sent(at_lines, "ATD") == [f"ATD{LONDON};"] * 2

        # One ledger key for both spellings: the destination's two calls today are one count.
        digest = rig.daemon.runtime.ledger.hasher.hash(LONDON)
        assert rig.daemon.runtime.ledger.destination_calls(digest, 0) == 2

        malformed = await rig.request("call", {"number": "+44 20 7946 01234", "max_duration_s": 1})
        assert malformed["status"] == "error"
        assert malformed["code"] == "validation_error"
        assert "7946" not in malformed["error"]
        letters = await rig.request("sms/send", {"number": "+44 20 7946 O123", "text": "x"})
        assert letters["code"] == "validation_error", letters

        premium = await rig.request("call", {"number": "09098 790123", "max_duration_s": 1})
        assert premium["code"] == "restricted_destination", premium
        assert premium["detail"] == {"number_type": "premium_rate"}

        # Nothing refused reached the modem.
        assert _sent(at_lines, "ATD") == [f"ATD{LONDON};"] * 2
        assert len(_sent(at_lines, "AT+CMGS")) == 1
        assert _delivered_to(rig) == [LONDON]
