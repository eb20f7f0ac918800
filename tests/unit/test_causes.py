"""The one 24.008 cause table: what the simulator prints, the drivers read back."""

from __future__ import annotations

import pytest

from simbank.drivers.parse.calls import CAUSE_NAMES, parse_ceer
from simbank.drivers.parse.causes import CALL_CAUSES, EPS_REJECT_CAUSES, REJECT_CAUSES
from simbank.drivers.parse.reject_causes import reject_cause_from_ceer


def test_the_drivers_call_cause_names_are_the_one_table() -> None:
    assert CAUSE_NAMES is CALL_CAUSES


@pytest.mark.parametrize(("code", "text"), sorted(REJECT_CAUSES.items()))
def test_every_reject_cause_text_reads_back_as_its_number(code: int, text: str) -> None:
    assert reject_cause_from_ceer(f'+CEER: "{text}"') == code
    assert reject_cause_from_ceer(f'+CEER: "{code} {text}"') == code  # the "numbered" form


@pytest.mark.parametrize(
    ("code", "text"), [(c, t) for c, names in sorted(EPS_REJECT_CAUSES.items()) for t in names]
)
def test_every_eps_name_reads_back_as_its_number(code: int, text: str) -> None:
    assert code in REJECT_CAUSES
    assert reject_cause_from_ceer(f"+CEER: {text.upper().replace(' ', '_')}") == code


@pytest.mark.parametrize(("code", "text"), sorted(CALL_CAUSES.items()))
def test_every_call_cause_text_reads_back_as_its_number(code: int, text: str) -> None:
    assert parse_ceer(f'+CEER: "{text}"').code == code
    assert reject_cause_from_ceer(f'+CEER: "{text}"') is None  # a clearing cause is no reject
