"""Storing and announcing the block detector's verdicts: the ledger first (state and evidence),
then the ``sim_<state>`` event, then the circuit breaker's count of blocked SIMs.

Part of the :class:`~simbank.daemon.runtime.BankRuntime`, which feeds the detector and
starts the re-attaches a verdict asks for.
"""

from __future__ import annotations

import structlog

from simbank.bank.circuit import CircuitBreaker
from simbank.bank.evidence import Verdict
from simbank.daemon.board import StatusBoard
from simbank.store.ledger import Ledger

log = structlog.get_logger(__name__)

CIRCUIT_KEY = "circuit"


class VerdictLedger:
    """Writes each verdict down and counts blocks towards the circuit breaker."""

    def __init__(self, ledger: Ledger, board: StatusBoard, circuit: CircuitBreaker) -> None:
        self.ledger = ledger
        self.board = board
        self.circuit = circuit

    def record(self, verdict: Verdict, modem: str | None, now: float) -> None:
        """Store ``verdict`` with its evidence, publish it, and count it if it is a block."""
        iccid = verdict.iccid
        self.ledger.record_verdict(
            iccid,
            verdict.state,
            verdict.since,
            verdict.reason,
            [(obs.at, obs.kind, dict(obs.detail)) for obs in verdict.evidence],
        )
        self.board.event(
            f"sim_{verdict.state}",
            iccid=iccid,
            modem=modem,
            reason=verdict.reason,
            evidence=[o.as_dict() for o in verdict.evidence][-10:],
        )
        log.warning("sim_verdict", iccid=iccid, state=verdict.state, reason=verdict.reason)
        if verdict.state == "blocked":
            self._count_block(iccid, now)

    def _count_block(self, iccid: str, now: float) -> None:
        opened = self.circuit.record_block(iccid, now)
        self.save_circuit(now)
        if opened:
            self.board.event(
                "circuit_opened",
                reason="blocks",
                blocks=self.circuit.blocks_in_window(now),
                window_s=self.circuit.window_s,
            )
            self.ledger.audit(now, "daemon", "circuit_opened", self.circuit.to_state())

    def save_circuit(self, now: float) -> None:
        self.ledger.put_setting(CIRCUIT_KEY, self.circuit.to_state(), now)
