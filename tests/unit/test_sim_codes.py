"""One table of SIM CME codes, read the same way by the driver and the block detector
(issue 11 item 4: CME 18 was READY in drivers/identity.py and PUK-locked in bank/detector.py).

Codes: 3GPP TS 27.007 §9.2.1; vendor 262 "SIM blocked" (SIMCom/Telit lineage).
"""

from __future__ import annotations

import pytest

from simbank.at.codes import SimProblem, sim_problem
from simbank.bank.detector import BlockDetector
from simbank.config.models import DetectionConfig
from simbank.drivers.parse.identity import sim_status_from_cme
from simbank.drivers.types import SimStatus

# What +CPIN? answered with "+CME ERROR: <code>" means for the SIM.
# fmt: off
CPIN_CME = [
    (10, SimStatus.ABSENT, SimProblem.ABSENT, None),
    (11, SimStatus.PIN, SimProblem.LOCKED, None),
    (12, SimStatus.PUK, SimProblem.LOCKED, "puk_locked"),
    (13, SimStatus.ERROR, SimProblem.FAULT, None),
    (14, SimStatus.NOT_READY, None, None),
    (15, SimStatus.ERROR, SimProblem.FAULT, None),
    (16, SimStatus.ERROR, None, None),
    (17, SimStatus.READY, None, None),
    (18, SimStatus.READY, None, None),
    (5, SimStatus.PIN, SimProblem.LOCKED, None),  # PH-SIM PIN, as "+CPIN: PH-SIM PIN"
    (41, SimStatus.PUK, SimProblem.LOCKED, "puk_locked"),  # as "+CPIN: PH-NET PUK"
    (262, SimStatus.ERROR, SimProblem.BLOCKED, "sim_blocked"),
    (3, SimStatus.ERROR, None, None),
    (None, SimStatus.ERROR, None, None),
]
# fmt: on


@pytest.mark.parametrize(("code", "status", "problem", "lock"), CPIN_CME)
def test_driver_and_detector_read_one_table(
    code: int | None, status: SimStatus, problem: SimProblem | None, lock: str | None
) -> None:
    assert sim_status_from_cme(code) is status
    assert sim_problem(code) is problem
    detector = BlockDetector(DetectionConfig())
    verdicts = detector.on_sim_status("A", 0.0, status=str(status), cme_code=code)
    assert [v.reason for v in verdicts] == ([] if lock is None else [lock])
