"""Inbound calls on one modem: RINGs and ``+CLIP`` lines become one call, decided, ended, told.

The session hands every ``RING``/``+CRING`` (:class:`~simbank.drivers.parse.incoming.Ring`)
and ``+CLIP`` (:class:`~simbank.drivers.parse.incoming.CallerId`) to :class:`IncomingCalls`.
The first ring opens a call on the SIM read back in the slot; later rings count on it. Its
own task (:meth:`IncomingCalls.run`, beside the session's follow loop) then:

- asks the :class:`InboundCallHandler` (the bank side's policy) what to do, until it says
  ``ring`` or ``reject``; ``reject`` hangs up (``AT+CHUP``, else ``ATH``) and ends the call;
- when the rings stop (no ring for :attr:`IncomingCalls.ring_gap_s`, or twice and a half the
  gap between the last two rings), asks ``AT+CLCC``: a mobile-terminated call that is active
  was answered (by the PBX on the modem's other port), and stays *live* until ``AT+CLCC``
  no longer lists it; otherwise the call was missed.

Each call is told to the handler once, when its outcome is known (``answered``, ``missed``,
``rejected``): one ``incoming_call`` event per call, never one per RING. While a call rings or
is live, :attr:`IncomingCalls.busy` holds: nothing switches the modem's slot under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import structlog

from simbank.bank.inbound import Decision, Verdict
from simbank.drivers.parse.incoming import CallerId, Ring
from simbank.drivers.types import CallDirection, CallState
from simbank.errors import AtTimeout, CommandError, PortLost, ProtocolGarbage

if TYPE_CHECKING:
    from simbank.bank.sim_identity import SimIdentity
    from simbank.clock import Clock
    from simbank.drivers.generic import GenericDriver

log = structlog.get_logger(__name__)

Outcome = Literal["answered", "missed", "rejected"]

#: With one ring seen, the call is over when none follows for this long (loop seconds);
#: modems ring every 3 to 6 s.
RING_GAP_S = 8.0
#: With two rings or more: this many times the last gap between two rings.
GAP_FACTOR = 2.5
#: Floor of the adaptive gap (a modem that glued two RINGs together).
MIN_GAP_S = 0.5
#: A ring's +CLIP follows it at once; a decision waits this long for it (loop seconds).
CLIP_GRACE_S = 1.0
#: A live (answered) call is looked at this often until it ends.
LIVE_POLL_S = 2.0
#: After a failed AT step, the next try waits this long.
RETRY_S = 1.0
#: After this many failed steps in a row the call is no longer followed (a modem without a
#: working ``AT+CLCC`` must not hold its slot for ever): told ``missed`` if not told yet.
MAX_FAILED_STEPS = 3


@dataclass
class IncomingCall:
    """One inbound call, from its first ring."""

    iccid: str | None
    started_at: float  # clock seconds (the record's time)
    first_ring: float  # loop seconds, as every other mark below
    last_ring: float
    kind: str | None = None
    rings: int = 0
    ring_interval: float | None = None
    caller: CallerId | None = None  # None: no +CLIP seen (yet)
    decision: Decision | None = None  # the final one (ring or reject) once made
    live: bool = False
    reported: bool = False

    @property
    def number(self) -> str | None:
        return self.caller.number if self.caller is not None else None


class InboundCallHandler(Protocol):
    """The bank side of inbound calls (:class:`simbank.daemon.inbound_calls.InboundCalls`)."""

    def decide(self, modem_id: str, call: IncomingCall, *, caller_id: bool) -> Decision:
        """What to do with ``call`` now (the policy of its SIM)."""
        ...

    def finished(
        self, modem_id: str, call: IncomingCall, outcome: Outcome, *, hangup: str | None
    ) -> None:
        """The call's outcome is known: record it, announce it (once per call)."""
        ...


class IncomingCalls:
    """One modem's inbound call (at most one at a time is followed; see the module's doc)."""

    def __init__(self, modem_id: str, sim: SimIdentity, clock: Clock) -> None:
        self.modem_id = modem_id
        self.sim = sim
        self.clock = clock
        self.handler: InboundCallHandler | None = None
        self.ring_gap_s = RING_GAP_S
        self.live_poll_s = LIVE_POLL_S
        self.call: IncomingCall | None = None
        #: The modem reports callers (``AT+CLIP=1`` accepted): set by :meth:`run`.
        self.caller_id = False
        self._changed = asyncio.Event()
        self._retry_at = 0.0
        self._failed_steps = 0
        #: Calls told to the handler, by outcome (for tests and the log).
        self.outcomes: list[Outcome] = []

    @property
    def busy(self) -> bool:
        """A call rings or is live on this modem: no slot switch now."""
        return self.call is not None

    # -- from the session's URC callback (synchronous) --------------------------------------
    def on_ring(self, ring: Ring) -> None:
        if not ring.voice:
            log.info("incoming_call_not_voice", kind=ring.kind)
            return
        now = asyncio.get_running_loop().time()
        call = self.call
        if call is None or call.live:
            if call is not None:  # a second call while one is live: call waiting, not followed
                return
            call = IncomingCall(
                iccid=self.sim.iccid,
                started_at=self.clock.now(),
                first_ring=now,
                last_ring=now,
                kind=ring.kind,
            )
            self.call = call
            log.info("incoming_call_ringing", iccid=call.iccid)
        else:
            call.ring_interval = now - call.last_ring
            call.last_ring = now
        call.rings += 1
        self._changed.set()

    def on_caller(self, caller: CallerId) -> None:
        call = self.call
        if call is None or call.live:
            return  # a +CLIP without a RING before it (or during a live call): not ours
        if call.caller is None or caller.number is not None:
            call.caller = caller
        self._changed.set()

    def lost(self) -> None:
        """The port closed: whatever rang is no longer followed (it is not recorded)."""
        if self.call is not None:
            log.info("incoming_call_lost", rings=self.call.rings, live=self.call.live)
        self.call = None

    # -- the task -------------------------------------------------------------------------------
    async def run(self, driver: GenericDriver) -> None:
        """Follow calls until cancelled (the session cancels it when it ends)."""
        loop = asyncio.get_running_loop()
        self.caller_id = driver.capabilities.get("caller_id", False)
        while True:
            wait = self._wake_in(loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if math.isinf(wait) else max(0.0, wait)):
                    await self._changed.wait()
            self._changed.clear()
            if loop.time() < self._retry_at:
                continue
            try:
                await self.tend(driver)
            except PortLost:
                return  # the session's follow loop sees it too and ends the session
            except (AtTimeout, CommandError, ProtocolGarbage) as exc:
                self._failed_steps += 1
                log.warning("incoming_call_step_failed", error=str(exc), tries=self._failed_steps)
                self._retry_at = loop.time() + RETRY_S
                if self._failed_steps >= MAX_FAILED_STEPS:
                    self._give_up()
            else:
                self._failed_steps = 0

    def _give_up(self) -> None:
        call, self.call = self.call, None
        self._failed_steps = 0
        if call is not None:
            log.warning("incoming_call_no_longer_followed", live=call.live)
            self._finish(call, "missed", hangup=None)

    def _gap(self, call: IncomingCall) -> float:
        if call.ring_interval is None:
            return self.ring_gap_s
        return min(self.ring_gap_s, max(MIN_GAP_S, GAP_FACTOR * call.ring_interval))

    def _wake_in(self, now: float) -> float:
        call = self.call
        if call is None:
            return math.inf
        retry = max(0.0, self._retry_at - now)
        if call.live:
            return max(retry, self.live_poll_s)
        due = call.last_ring + self._gap(call)
        if self._awaits_caller(call):
            due = min(due, call.last_ring + CLIP_GRACE_S)
        return max(retry, due - now)

    def _awaits_caller(self, call: IncomingCall) -> bool:
        """Undecided, and the caller's +CLIP may still come for the last ring."""
        return call.decision is None and call.caller is None and self.caller_id

    async def tend(self, driver: GenericDriver) -> None:
        """One step: decide, reject, or see whether the rings stopped or the live call ended."""
        call = self.call
        if call is None:
            return
        if call.live:
            if await self._listed(driver) != "live":
                log.info("incoming_call_ended")
                self.call = None
            return
        loop = asyncio.get_running_loop()
        grace = self._awaits_caller(call) and loop.time() - call.last_ring < CLIP_GRACE_S
        if call.decision is None and not grace:
            decision = self._decide(call)
            if decision.verdict is Verdict.REJECT and await self._another_call_up(driver):
                # AT+CHUP / ATH would end the call already up (the PBX's, on the same radio)
                # with this one: it is left to ring (call waiting) and followed as any other.
                log.warning("incoming_call_not_rejected", reason="another_call_up")
                decision = Decision(Verdict.RING, "another_call_up")
            if decision.verdict is Verdict.REJECT:
                call.decision = decision
                hangup = await driver.reject_call()
                log.info("incoming_call_rejected", rings=call.rings, reason=decision.reason)
                self.call = None
                self._finish(call, "rejected", hangup=hangup)
                return
            if decision.verdict is Verdict.RING:
                call.decision = decision
        if loop.time() - call.last_ring < self._gap(call):
            return
        # The rings stopped: answered (live now), still ringing slowly, or missed.
        listed = await self._listed(driver)
        if self.call is not call:
            return
        if listed == "ringing":
            call.last_ring = loop.time()
        elif listed == "live":
            call.live = True
            self._finish(call, "answered", hangup=None)
        else:
            self.call = None
            self._finish(call, "missed", hangup=None)

    def _decide(self, call: IncomingCall) -> Decision:
        if self.handler is None:
            return Decision(Verdict.RING, "no_policy")
        return self.handler.decide(self.modem_id, call, caller_id=self.caller_id)

    @staticmethod
    async def _another_call_up(driver: GenericDriver) -> bool:
        """Whether ``AT+CLCC`` lists a call besides the one ringing in (an outgoing call, or
        an answered one): hanging up would end it too. Unknown (refused, garbled): no."""
        try:
            calls = await driver.list_calls()
        except (AtTimeout, CommandError, ProtocolGarbage):
            return False
        return any(
            info.direction is CallDirection.MOBILE_ORIGINATED
            or info.state not in (CallState.INCOMING, CallState.WAITING)
            for info in calls
        )

    @staticmethod
    async def _listed(driver: GenericDriver) -> Literal["live", "ringing", "none"]:
        """What ``AT+CLCC`` lists of a mobile-terminated call: an answered one (active or
        held), one still ringing (``<stat>`` 4), or none."""
        states = {
            info.state
            for info in await driver.list_calls()
            if info.direction is CallDirection.MOBILE_TERMINATED
        }
        if states & {CallState.ACTIVE, CallState.HELD}:
            return "live"
        if CallState.INCOMING in states:
            return "ringing"
        return "none"

    def _finish(self, call: IncomingCall, outcome: Outcome, *, hangup: str | None) -> None:
        if call.reported:
            return
        call.reported = True
        self.outcomes.append(outcome)
        if self.handler is not None:
            self.handler.finished(self.modem_id, call, outcome, hangup=hangup)
        else:
            log.info("incoming_call", outcome=outcome, rings=call.rings, iccid=call.iccid)
