"""SMS refusals as block evidence: +CMS ERROR 8/10 block the SIM (``sms_barred``), 21/50
make it suspected once, other codes are not evidence, and a blocked SIM stays blocked."""

from __future__ import annotations

import pytest

from simbank.bank.detector import BlockDetector
from simbank.config.models import DetectionConfig

ICCID = "89860012345678901234"
T0 = 1_780_000_000.0


@pytest.mark.parametrize(
    ("cms", "state"),
    [
        (8, "blocked"),  # operator determined barring
        (10, "blocked"),  # call barred
        (21, "suspected"),  # short message transfer rejected
        (50, "suspected"),  # requested facility not subscribed
        (38, None),  # network out of order: not about the SIM
        (330, None),  # SMSC address unknown
        (500, None),  # unknown error
    ],
)
def test_a_refusal_is_evidence_only_when_it_speaks_of_the_sim(cms: int, state: str | None) -> None:
    detector = BlockDetector(DetectionConfig())
    verdicts = detector.on_sms_refused(ICCID, T0, cms=cms, raw=f"+CMS ERROR: {cms}")
    assert [(v.state, v.reason) for v in verdicts] == ([(state, "sms_barred")] if state else [])
    if verdicts:
        (evidence,) = verdicts[0].evidence
        assert evidence.kind == "sms_refused" and evidence.detail["cms_error"] == cms


def test_suspected_once_then_blocked_and_nothing_after() -> None:
    detector = BlockDetector(DetectionConfig())
    assert detector.on_sms_refused(ICCID, T0, cms=21, raw=None)
    assert detector.on_sms_refused(ICCID, T0 + 1, cms=21, raw=None) == []
    (blocked,) = detector.on_sms_refused(ICCID, T0 + 2, cms=8, raw=None)
    assert blocked.state == "blocked"
    assert detector.on_sms_refused(ICCID, T0 + 3, cms=10, raw=None) == []
