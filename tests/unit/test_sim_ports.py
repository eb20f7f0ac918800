"""Scenario and constructor checks of the simulator's second AT port (pure: no PTY opened)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.scenario import ModemSpec, make_iccid


def _modem(**extra: Any) -> dict[str, Any]:
    return {"id": "m1", "slots": [{"iccid": make_iccid(1601)}], **extra}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"urc_port": 2}, "urc_port 2 but the modem has 1 port"),
        ({"ports": 3}, "less than or equal to 2"),
        ({"ports": 0}, "greater than or equal to 1"),
        ({"ports": 2, "urc_port": 3}, "less than or equal to 2"),
    ],
)
def test_bad_port_settings_are_scenario_errors(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Scenario.model_validate({"modems": [_modem(**extra)]})


def test_a_modem_has_one_port_unless_told(tmp_path: Path) -> None:
    spec = ModemSpec.model_validate(_modem())
    assert (spec.ports, spec.urc_port) == (1, 1)
    second = ModemSpec(id="m2", slots=spec.slots, ports=2, urc_port=2)
    bank = SimulatedBank(Scenario(modems=[spec]), tmp_path)
    two = SimulatedBank(Scenario(modems=[second]), tmp_path / "two")
    assert bank.modems["m1"].aux_link is None
    assert two.modems["m2"].aux_link == tmp_path / "two" / "m2.at2"
    assert two.modems["m2"].urc_port == 2
    assert two.aux_port("m2") == tmp_path / "two" / "m2.at2"
    with pytest.raises(ValueError, match="one AT port"):
        bank.aux_port("m1")
    with pytest.raises(KeyError):
        bank.aux_port("m3")
