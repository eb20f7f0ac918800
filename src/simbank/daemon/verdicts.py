"""Storing and announcing the block detector's verdicts: the ledger first (state and evidence),
then the ``sim_<state>`` event, then the circuit breaker's count of blocked SIMs.

A verdict the ledger cannot store (a storage fault: the gateway is ``degraded``) is announced
all the same, and kept: :meth:`VerdictLedger.records` shows it over the ledger's states (the
SIM stays quarantined), and :meth:`VerdictLedger.retry` writes it once the storage is back.

Part of the :class:`~simbank.daemon.runtime.BankRuntime`, which feeds the detector and
starts the re-attaches a verdict asks for.
"""

from __future__ import annotations

import structlog

from simbank.bank.circuit import CircuitBreaker
from simbank.bank.evidence import Verdict
from simbank.daemon.board import StatusBoard
from simbank.daemon.publication import evidence_json
from simbank.errors import StorageUnavailable
from simbank.store.core import dump_json
from simbank.store.ledger import Ledger, SimRecord

log = structlog.get_logger(__name__)

CIRCUIT_KEY = "circuit"
#: The latest observations a ``sim_<state>`` event carries (the ledger keeps them all).
EVIDENCE_IN_EVENT = 10


class VerdictLedger:
    """Writes each verdict down and counts blocks towards the circuit breaker."""

    def __init__(self, ledger: Ledger, board: StatusBoard, circuit: CircuitBreaker) -> None:
        self.ledger = ledger
        self.board = board
        self.circuit = circuit
        #: Verdicts the ledger could not store yet, by ICCID (the latest of each SIM).
        self.unsaved: dict[str, Verdict] = {}

    def records(self) -> dict[str, SimRecord]:
        """Every SIM's state: the ledger's, with the verdicts not stored yet over it. While the
        ledger cannot be read at all, only those (nothing is booked then anyway)."""
        try:
            states = self.ledger.sim_states()
        except StorageUnavailable:
            states = {}
        for iccid, verdict in self.unsaved.items():
            states[iccid] = SimRecord(
                state=verdict.state, reason=verdict.reason, since=verdict.since, note=None
            )
        return states

    def _store(self, verdict: Verdict) -> bool:
        try:
            self.ledger.record_verdict(
                verdict.iccid,
                verdict.state,
                verdict.since,
                verdict.reason,
                self._new_evidence(verdict),
            )
        except StorageUnavailable as exc:
            self.unsaved[verdict.iccid] = verdict
            log.warning("verdict_not_stored", iccid=verdict.iccid, error=str(exc))
            return False
        self.unsaved.pop(verdict.iccid, None)
        return True

    def retry(self) -> list[str]:
        """Store the verdicts kept while the ledger failed; the ICCIDs now stored."""
        stored = []
        for iccid, verdict in list(self.unsaved.items()):
            if self.unsaved.get(iccid) is verdict and self._store(verdict):
                stored.append(iccid)
                log.info("verdict_stored_late", iccid=iccid, state=verdict.state)
            else:
                break  # still failing: the next round tries again
        return stored

    def record(self, verdict: Verdict, modem: str | None, now: float) -> None:
        """Store ``verdict`` with its evidence, publish it, and count it if it is a block.
        Published even when the ledger cannot store it (kept for :meth:`retry`)."""
        iccid = verdict.iccid
        self._store(verdict)
        self.board.event(
            f"sim_{verdict.state}",
            iccid=iccid,
            modem=modem,
            reason=verdict.reason,
            evidence=evidence_json(verdict.evidence[-EVIDENCE_IN_EVENT:]),
        )
        log.warning("sim_verdict", iccid=iccid, state=verdict.state, reason=verdict.reason)
        if verdict.state == "blocked":
            self._count_block(iccid, now)

    def _new_evidence(self, verdict: Verdict) -> list[tuple[float, str, dict[str, object]]]:
        """The verdict's observations the ledger does not hold yet: a block that follows a
        suspicion of the same episode repeats that episode's observations, stored once."""
        first = verdict.evidence[0].at
        stored = {
            (e.at, e.kind, dump_json(e.detail))
            for e in self.ledger.evidence(verdict.iccid, since=first)
        }
        fresh = []
        for obs in verdict.evidence:
            row = (obs.at, obs.kind, dict(obs.detail))
            if (obs.at, obs.kind, dump_json(row[2])) not in stored:
                fresh.append(row)
        return fresh

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
            try:
                self.ledger.audit(now, "daemon", "circuit_opened", self.circuit.to_state())
            except StorageUnavailable as exc:
                log.warning("audit_not_stored", action="circuit_opened", error=str(exc))

    def save_circuit(self, now: float) -> None:
        try:
            self.ledger.put_setting(CIRCUIT_KEY, self.circuit.to_state(), now)
        except StorageUnavailable as exc:  # open in memory all the same
            log.warning("circuit_not_stored", error=str(exc))
