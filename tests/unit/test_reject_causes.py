"""Registration reject causes read from +CEER after a denial without one (modem-realism.md E3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.drivers.parse.reject_causes import reject_cause_from_ceer


@pytest.mark.parametrize(
    ("line", "cause"),
    [
        # ModemManager plugins/altair/tests/test-modem-helpers-altair-lte.c (Altair LTE, real)
        ("+CEER: EPS_AND_NON_EPS_SERVICES_NOT_ALLOWED", 8),
        ("+CEER: NO_SUITABLE_CELLS_IN_TRACKING_AREA", 15),
        ("+CEER:", None),  # the same tests: an empty +CEER
        # 27.007 free text, as the simulator's models and many modems report it
        ('+CEER: "Illegal MS"', 3),
        ("+CEER: IMSI unknown in HLR", 2),
        ('+CEER: "3 Illegal MS"', 3),  # number and text in one field (SIMCom style)
        ('+CEER: "EMM INFO",7', 7),  # category and number
        ('+CEER: "GMM INFO","8"', 8),
        # Not registration reject causes: a call's clearing cause left from the last call
        ('+CEER: "CC INFO","Normal call clearing"', None),
        ('+CEER: "16 Normal call clearing"', None),
        ('+CEER: "3 Normal call clearing"', None),  # number and name disagree
        ("+CEER: No cause information available", None),
        ('+CEER: "0 Unknown"', None),
        ("garbage", None),
    ],
)
def test_reject_cause_from_ceer(line: str, cause: int | None) -> None:
    assert reject_cause_from_ceer(line) == cause


@given(st.text(max_size=80))
def test_any_text_gives_a_cause_or_none_and_never_raises(text: str) -> None:
    result = reject_cause_from_ceer("+CEER: " + text)
    assert result is None or 0 < result < 256
