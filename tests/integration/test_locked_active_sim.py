"""A modem never rests on a SIM that cannot serve while a healthy one waits in its other slot.

A dual-slot modem powers up on a card that cannot serve (PUK-locked; PIN-locked with no PIN
configured; a SIM the carrier denies): the daemon marks that card with its evidence and moves
the modem to the healthy card on its own, at startup and without any traffic asking for it;
and the same when the serving card locks up later."""

from __future__ import annotations

from pathlib import Path

import pytest
from bankrig import BankRig, running

from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid
from simbank.simulator.sim import LockState

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=0.5, sim_init_s=0.3, ring_s=0.2, talk_s=30.0, ussd_s=0.2, rssi_period_s=5)


def bank(first: int, **trouble: object) -> Scenario:
    """One dual-slot modem: slot 1 (selected at power-on) with ``trouble``, slot 2 healthy."""
    slots = [
        SimSpec.model_validate(
            {
                "iccid": make_iccid(first + n),
                "registration_delay_s": 0.2,
                **(trouble if n == 0 else {}),
            }
        )
        for n in range(2)
    ]
    return Scenario(
        time_scale=1.0, timing=FAST, modems=[ModemSpec(id="m1", dialect="quectel", slots=slots)]
    )


async def serving(rig: BankRig, iccid: str) -> None:
    """m1 is ready on ``iccid``, registered, and the simulator agrees."""

    def on_it() -> bool:
        modem = rig.modem("m1")
        return (
            modem.get("state") == "ready"
            and modem.get("iccid") == iccid
            and (modem.get("registration") or {}).get("state") == "registered_home"
            and rig.bank.modems["m1"].active_slot == 2
        )

    await rig.until(on_it, timeout=30)


@pytest.mark.parametrize(
    ("trouble", "state", "reason"),
    [
        ({"behaviour": "puk"}, "locked", "puk_locked"),
        ({"behaviour": "pin"}, None, None),
        ({"behaviour": "denied", "reject_cause": 7}, "blocked", "reject_cause"),
    ],
    ids=["puk", "pin-without-pin", "denied"],
)
async def test_at_startup_the_modem_leaves_a_card_that_cannot_serve(
    tmp_path: Path,
    mosquitto: PrivateMosquitto,
    base_topic: str,
    trouble: dict[str, object],
    state: str | None,
    reason: str | None,
) -> None:
    scenario = bank(760, **trouble)
    bad, good = (s.iccid for s in scenario.modems[0].slots)
    assert bad is not None and good is not None
    async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
        await serving(rig, good)
        # The card left behind is marked, with its evidence where the detector has a verdict.
        if state is not None:
            await rig.until(lambda: rig.sim(bad).get("state") == state)
            found = rig.events(f"sim_{state}", iccid=bad)
            assert found and found[-1]["reason"] == reason and found[-1]["evidence"]
        else:
            # No verdict for a card that only wants its PIN (not the carrier's doing), but it
            # shows locked, as the planner sees it, and never available.
            await rig.until(lambda: rig.sim(bad).get("state") == "locked")
            assert not rig.events("sim_locked", iccid=bad)
        moved = rig.events("sim_rotated", modem="m1", iccid=good, previous=bad)
        assert moved and moved[-1]["actor"] == "rotation"
        assert moved[-1]["reason"] == (state or "locked")
        # It stays there: no traffic was needed, and the healthy card serves the next call.
        answer = await rig.request("call", {"number": "+15550100001", "max_duration_s": 1})
        assert answer["status"] == "ok", answer
        assert answer["data"]["iccid"] == good
        assert rig.bank.carrier.stats.calls_by_iccid.get(bad, 0) == 0


async def test_a_serving_card_that_locks_later_is_left_for_the_healthy_one(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    scenario = bank(770)
    first, second = (s.iccid for s in scenario.modems[0].slots)
    assert first is not None and second is not None
    async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
        await rig.inventory_done()
        await rig.until(lambda: rig.modem("m1").get("iccid") == first)
        # The card asks for its PUK (a refresh after three wrong PINs): the modem says so.
        card = rig.bank.sim(first)
        card.lock = LockState.SIM_PUK
        rig.bank.modems["m1"].sim_changed()  # the card re-initialises: +CPIN: SIM PUK
        await serving(rig, second)
        await rig.until(lambda: rig.sim(first).get("state") == "locked")
        locked = rig.events("sim_locked", iccid=first)
        assert locked and locked[-1]["reason"] == "puk_locked"
        moved = rig.events("sim_rotated", modem="m1", iccid=second, previous=first)
        assert moved and moved[-1]["reason"] == "locked"
