"""Simulator model profiles (pure data): names, families, habits off unless a model has them."""

from __future__ import annotations

import typing

from simbank.simulator.dialects import DIALECTS
from simbank.simulator.habits import Habits
from simbank.simulator.scenario import MIX_MODELS, DialectName, realistic_mix

PLAIN_FAMILIES = ("generic", "quectel", "simcom", "fibocom")


def test_every_model_is_a_scenario_dialect_name() -> None:
    assert set(typing.get_args(DialectName)) == set(DIALECTS)
    for name, model in DIALECTS.items():
        assert model.family in {"generic", "quectel", "simcom", "huawei", "fibocom"}, name


def test_the_family_profiles_keep_the_plain_habits() -> None:
    for name in PLAIN_FAMILIES:
        assert DIALECTS[name].habits == Habits(), name
    # The ME909s has always reported ^CEND then NO CARRIER (E4); nothing else changes.
    assert DIALECTS["huawei"].habits == Habits(call_end_twice=True)


def test_the_mix_covers_every_habit() -> None:
    habits = [DIALECTS[name].habits for name in MIX_MODELS]
    assert any(h.chunking for h in habits)
    assert any(h.glue_urcs for h in habits)
    assert any(h.crcrlf for h in habits)
    assert any(h.sim_busy_after_switch_s > 0 for h in habits)
    assert {h.dial_ok for h in habits} == {"immediate", "on_answer", "never"}
    assert any(h.call_end_twice for h in habits)
    assert {"textual", "numbered", "empty", "ok_only"} <= {h.ceer_style for h in habits}
    assert {h.unknown_answer for h in habits} == {"ERROR", "COMMAND NOT SUPPORT"}
    assert not all(h.has_cesq for h in habits)
    assert any(DIALECTS[name].max_slots == 1 for name in MIX_MODELS)
    assert any(DIALECTS[name].max_slots == 2 for name in MIX_MODELS)


def test_realistic_mix_fills_every_slot_with_a_distinct_sim() -> None:
    scenario = realistic_mix(100, seed=3)
    assert [m.dialect for m in scenario.modems] == list(MIX_MODELS)
    assert scenario.seed == 3
    for modem in scenario.modems:
        assert len(modem.slots) == DIALECTS[modem.dialect].max_slots
    iccids = [s.iccid for m in scenario.modems for s in m.slots]
    assert len(iccids) == len(set(iccids))
