"""Scenario files: the shipped demo, validation, fictional identities."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from simbank.simulator.dialects import DIALECTS
from simbank.simulator.habits import Habits
from simbank.simulator.scenario import (
    Scenario,
    demo_scenario,
    load_scenario,
    luhn_digit,
    make_iccid,
    make_imei,
)
from simbank.simulator.sim import Behaviour, LockState, SimCard, swapped_bcd

DEMO = Path(__file__).resolve().parents[2] / "config" / "scenarios" / "demo.toml"


def test_shipped_demo_matches_builtin() -> None:
    assert load_scenario(DEMO) == demo_scenario()


def test_demo_shape() -> None:
    scenario = demo_scenario()
    assert len(scenario.modems) == 8
    assert all(len(m.slots) == DIALECTS[m.dialect].max_slots for m in scenario.modems)
    assert {DIALECTS[m.dialect].family for m in scenario.modems} == {
        "quectel",
        "simcom",
        "huawei",
        "fibocom",
    }
    # A mix: the plain family profiles and models with real habits, single-slot sticks too.
    assert any(DIALECTS[m.dialect].habits != Habits() for m in scenario.modems)
    assert any(DIALECTS[m.dialect].habits == Habits() for m in scenario.modems)
    assert any(len(m.slots) == 1 for m in scenario.modems)
    behaviours = {s.behaviour for m in scenario.modems for s in m.slots}
    assert {
        Behaviour.DENIED,
        Behaviour.PUK,
        Behaviour.SEARCHING,
        Behaviour.BARRED,
        Behaviour.ABSENT,
    } <= behaviours
    for modem in scenario.modems:
        for slot in modem.slots:
            if slot.iccid is not None:
                assert slot.iccid.startswith("8999")
                assert len(slot.iccid) in (19, 20)
                assert slot.resolved_imsi().startswith("00101")


def _one(**modem: object) -> dict[str, object]:
    base: dict[str, object] = {"id": "m1", "slots": [{"iccid": make_iccid(1)}]}
    return {"modems": [{**base, **modem}]}


@pytest.mark.parametrize(
    "data",
    [
        {**_one(), "bogus": 1},
        _one(dialect="generic", slots=[{"iccid": make_iccid(1)}, {"iccid": make_iccid(2)}]),
        _one(slots=[{"iccid": "89010000000000000001"}]),  # real-looking issuer prefix
        _one(slots=[{"behaviour": "home"}]),  # no ICCID
        _one(dialect="nokia"),
        _one(active_slot=2),
        {"modems": [_one()["modems"][0], _one()["modems"][0]]},  # type: ignore[index]
        {**_one(), "time_scale": 0},
    ],
)
def test_invalid_scenarios(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Scenario.model_validate(data)


def test_identities() -> None:
    assert luhn_digit("7992739871") == "3"
    assert make_imei(1).startswith("35000000")
    assert len(make_imei(1)) == 15
    assert swapped_bcd("8999010000000000001") == "989910000000000000F1"
    assert swapped_bcd("89990100000000000013") == "98991000000000000031"


def test_pin_attempts_lead_to_puk() -> None:
    card = SimCard(iccid=make_iccid(1), imsi="001010000000001", behaviour=Behaviour.PIN)
    assert card.lock is LockState.SIM_PIN
    assert not card.enter_pin("0000")
    assert not card.enter_pin("0000")
    assert not card.enter_pin("0000")
    assert card.lock is LockState.SIM_PUK
    assert card.enter_pin(card.puk, "4321")
    assert card.lock is LockState.READY
    assert card.pin == "4321"
