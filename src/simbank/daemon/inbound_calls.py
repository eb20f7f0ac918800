"""The bank side of inbound calls: each SIM's policy decides, each call is stored and announced.

A modem's :class:`~simbank.daemon.modem.ringing.IncomingCalls` asks :meth:`InboundCalls.decide`
while a call rings (the pure :func:`simbank.bank.inbound.decide` under the SIM's policy:
``inbound_action``, ``inbound_reject_after_rings``, ``inbound_allow_file``) and tells
:meth:`InboundCalls.finished` once its outcome is known: one row in the ledger's
``inbound_calls`` table and one ``incoming_call`` event per call. The caller is shown as the
privacy rule shows SMS senders (masked unless ``[compliance] show_sms_sender``) and stored only
as its keyed hash. Inbound calls are not usage: the outbound quotas never count them.

An allow list is the do-not-call list's kind of file (:class:`~simbank.store.dnc.DoNotCallList`:
one number a line, held as keyed hashes), read again when its modification time changes; one
that cannot be read lets nobody through (every caller is unknown) and says so in the log.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from simbank.bank.inbound import Decision, InboundAction, Ringing, decide
from simbank.daemon.modem.ringing import IncomingCall, Outcome
from simbank.daemon.redact import redact_text
from simbank.errors import ConfigError, LedgerError
from simbank.store.dnc import DoNotCallList

if TYPE_CHECKING:
    from simbank.daemon.runtime import BankRuntime

log = structlog.get_logger(__name__)


class InboundCalls:
    """Decides, stores and announces inbound calls for every modem of the gateway."""

    def __init__(self, runtime: BankRuntime) -> None:
        self.runtime = runtime
        self.store = runtime.ledger
        self._allow: dict[Path, tuple[float, DoNotCallList]] = {}

    # -- the policy ------------------------------------------------------------------------------
    def allow_list(self, path: Path) -> DoNotCallList | None:
        """The allow list in ``path``, read again when the file changed; None if unreadable."""
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            log.warning("inbound_allow_file_unreadable", path=str(path), error=exc.strerror)
            return None
        cached = self._allow.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        region = self.runtime.config.compliance.default_region
        try:
            numbers = DoNotCallList.load(path, self.runtime.ledger.hasher, region)
        except ConfigError as exc:
            log.warning("inbound_allow_file_unreadable", path=str(path), error=str(exc))
            return None
        for problem in numbers.problems:
            log.warning("inbound_allow_file_problem", problem=problem)
        self._allow[path] = (mtime, numbers)
        log.info("inbound_allow_file_loaded", path=str(path), numbers=len(numbers))
        return numbers

    def decide(self, modem_id: str, call: IncomingCall, *, caller_id: bool) -> Decision:
        policies = self.runtime.config.policies
        policy = self.runtime.policy_of(call.iccid) if call.iccid else policies["default"]
        action = InboundAction(policy.inbound_action)
        allowed = False
        number = call.number
        if action is InboundAction.REJECT_UNKNOWN and number is not None:
            path = policy.inbound_allow_file
            numbers = self.allow_list(path) if path is not None else None
            allowed = numbers is not None and numbers.contains(number)
        ringing = Ringing(
            rings=call.rings,
            caller_seen=call.caller is not None,
            allowed=allowed,
            caller_id=caller_id,
        )
        return decide(action, policy.inbound_reject_after_rings, ringing)

    # -- the outcome -----------------------------------------------------------------------------
    def shown_caller(self, call: IncomingCall) -> str:
        """The caller as the ``incoming_call`` event shows it."""
        caller = call.caller
        if caller is None:
            return "unknown"  # no +CLIP: the modem does not report callers
        if caller.number is None:
            return caller.reason or "withheld"
        if self.runtime.config.compliance.show_sms_sender:
            return caller.number
        return redact_text(caller.number)

    def finished(
        self, modem_id: str, call: IncomingCall, outcome: Outcome, *, hangup: str | None
    ) -> None:
        runtime = self.runtime
        shown = self.shown_caller(call)
        # The ledger never keeps a number in clear (only its keyed hash, and this masked form),
        # whatever the live event may show under ``show_sms_sender``.
        stored = redact_text(call.number) if call.number is not None else shown
        action = "reject" if outcome == "rejected" else "ring"
        reason = call.decision.reason if call.decision is not None else "undecided"
        try:
            self.store.record_inbound_call(
                iccid=call.iccid or f"unknown:{modem_id}",
                modem=modem_id,
                started_at=call.started_at,
                ended_at=runtime.clock.now(),
                caller=call.number,
                shown_caller=stored,
                rings=call.rings,
                action=action,
                reason=reason,
                outcome=outcome,
            )
        except LedgerError as exc:  # the event still goes out
            log.warning("inbound_call_not_stored", error=str(exc))
        log.info(
            "incoming_call",
            iccid=call.iccid,
            outcome=outcome,
            action=action,
            reason=reason,
            rings=call.rings,
            hangup=hangup,
        )
        runtime.board.event(
            "incoming_call",
            modem=modem_id,
            iccid=call.iccid,
            caller=shown,
            withheld=call.number is None,
            action=action,
            reason=reason,
            outcome=outcome,
            rings=call.rings,
        )
