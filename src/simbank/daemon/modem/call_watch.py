"""Calls on one modem whoever dials them: a PBX on the modem's other AT port, or a person.

While the session is online and not switching, :class:`CallWatch` asks ``AT+CLCC`` every
:data:`POLL_S` (every :data:`LIVE_POLL_S` while a call is listed) and hears the ``+CLCC``
URCs a dialect can be asked for (SIMCom ``AT+CLCC=1``, capability ``call_reports``; they may
be routed to the other port, so the poll is the safety net). The pure :class:`CallTracker`
turns those answers into calls that start and end:

- a **mobile-originated** call is told to the :class:`CallHandler` (the bank side,
  :mod:`simbank.daemon.outbound_calls`) once its SIM is known, and again when it is no longer
  listed, with its talk time (first seen active → seen gone, a started second counted) and
  outcome (``completed`` if it was ever active, else ``no_answer``) — except the daemon's own
  ``call`` (:meth:`CallWatch.own_call`), which is booked already;
- a **mobile-terminated** call is :mod:`.ringing`'s business (it is never told here), but it
  makes the modem busy all the same.

While any call is listed :attr:`CallWatch.live` holds: nothing switches the modem's slot. The
calls outlive a session (a lost port does not end them): the next session's first answer says
whether they are still there. A modem that answers ``AT+CLCC`` with a plain ``ERROR`` is not
asked again for :data:`REFUSED_BACKOFF_S` (logged once; the calls it followed end ``unknown``);
a timeout or a garbled line is one failed poll, never the end of the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import structlog

from simbank.drivers.types import CallDirection, CallInfo, CallState
from simbank.errors import AtTimeout, CommandError, PortLost, ProtocolGarbage

if TYPE_CHECKING:
    from simbank.bank.sim_identity import SimIdentity
    from simbank.clock import Clock
    from simbank.drivers.generic import GenericDriver
    from simbank.drivers.parse.calls import CallReport

log = structlog.get_logger(__name__)

Outcome = Literal["completed", "no_answer", "unknown"]

#: ``AT+CLCC`` this often while no call is listed (loop seconds); the first poll of a session
#: comes after one interval.
POLL_S = 5.0
#: ...and this often while one is (its end is awaited: a switch may be waiting for it).
LIVE_POLL_S = 2.0
#: A modem that answers ``AT+CLCC`` with a plain ``ERROR`` is left alone this long.
REFUSED_BACKOFF_S = 3600.0
#: 27.007 ``+CME ERROR: 4`` (operation not supported) counts as such a refusal.
NOT_SUPPORTED = 4
_LIVE_STATES = frozenset({CallState.ACTIVE, CallState.HELD})


@dataclass(eq=False)
class WatchedCall:
    """One call listed by the modem (compared by identity: the bank side keys on it)."""

    id: int
    direction: CallDirection
    number: str | None
    first_seen: float  # clock seconds
    iccid: str | None = None  # the SIM read back in the slot when it was attributed
    active_since: float | None = None
    #: The daemon's own ``call`` placed it: booked already, never told.
    own: bool = False
    #: Told to the handler as started (an outgoing call whose SIM is known).
    told: bool = False
    #: :attr:`CallTracker.reports` when a URC last spoke of it (0: never).
    reported_at: int = 0
    states: list[CallState] = field(default_factory=list)

    @property
    def outgoing(self) -> bool:
        return self.direction is CallDirection.MOBILE_ORIGINATED

    def same_as(self, info: CallInfo) -> bool:
        return self.direction is info.direction and (
            info.number is None or self.number is None or info.number == self.number
        )


@dataclass(frozen=True, slots=True)
class Ended:
    """A call no longer listed: how it went and the talk time (seconds, rounded up)."""

    call: WatchedCall
    outcome: Outcome
    talk_s: int


@dataclass(slots=True)
class Changes:
    """What one observation changed: calls to tell as started, calls that ended."""

    started: list[WatchedCall] = field(default_factory=list)
    ended: list[Ended] = field(default_factory=list)


class CallTracker:
    """The calls a modem lists, by call id (pure: fed answers and a clock reading)."""

    def __init__(self) -> None:
        self.calls: dict[int, WatchedCall] = {}
        #: >0 while the daemon's own ``call`` runs: an outgoing call that appears is its.
        self.own = 0
        #: ``+CLCC`` URCs applied so far. A poll's answer is older than every URC heard after
        #: the poll was sent (a modem may write a URC before the final result of an answer it
        #: made earlier), so it never overrules them: see :meth:`listed`.
        self.reports = 0
        #: Calls a URC ended, by id: the count of reports when it did.
        self._ended_by_report: dict[int, int] = {}

    @property
    def live(self) -> bool:
        return bool(self.calls)

    def listed(
        self, infos: list[CallInfo], now: float, iccid: str | None, asked: int | None = None
    ) -> Changes:
        """A whole ``AT+CLCC`` answer: every call not in it has ended — except those a URC
        spoke of after the question (``asked``: :attr:`reports` when ``AT+CLCC`` was sent;
        None: now). A call a newer URC ended is not brought back by the older answer."""
        asked = self.reports if asked is None else asked
        changes = Changes()
        seen: set[int] = set()
        for info in infos:
            if self._ended_by_report.get(info.id, 0) > asked:
                continue
            seen.add(info.id)
            call = self.calls.get(info.id)
            if call is None or call.reported_at <= asked:
                self._update(info, now, changes)
        for call_id in [c for c, call in self.calls.items() if c not in seen]:
            if self.calls[call_id].reported_at <= asked:
                self._end(call_id, now, changes)
        self._ended_by_report = {k: v for k, v in self._ended_by_report.items() if v > asked}
        self._attribute(iccid, changes)
        return changes

    def reported(self, report: CallReport, now: float, iccid: str | None) -> Changes:
        """One ``+CLCC`` URC: one call's new state, or its end."""
        self.reports += 1
        changes = Changes()
        if report.info is None:
            self._ended_by_report[report.call_id] = self.reports
            if report.call_id in self.calls:
                self._end(report.call_id, now, changes)
        else:
            self._ended_by_report.pop(report.info.id, None)
            self._update(report.info, now, changes)
            self.calls[report.info.id].reported_at = self.reports
        self._attribute(iccid, changes)
        return changes

    def forget(self, now: float) -> Changes:
        """No longer followed (``AT+CLCC`` refused): every call ends, outcome ``unknown`` —
        a call that could never be seen to end must not keep the modem busy for ever."""
        changes = Changes()
        for call_id in list(self.calls):
            self._end(call_id, now, changes, outcome="unknown")
        return changes

    def _update(self, info: CallInfo, now: float, changes: Changes) -> None:
        call = self.calls.get(info.id)
        if call is not None and not call.same_as(info):
            self._end(info.id, now, changes)  # the id was reused by a new call meanwhile
            call = None
        if call is None:
            call = WatchedCall(info.id, info.direction, info.number, now)
            call.own = call.outgoing and self.own > 0
            self.calls[info.id] = call
        if not call.states or call.states[-1] is not info.state:
            call.states.append(info.state)
        if call.active_since is None and info.state in _LIVE_STATES:
            call.active_since = now

    def _end(
        self, call_id: int, now: float, changes: Changes, *, outcome: Outcome | None = None
    ) -> None:
        call = self.calls.pop(call_id)
        if call.active_since is None:
            changes.ended.append(Ended(call, outcome or "no_answer", 0))
        else:
            talk = max(0.0, now - call.active_since)
            changes.ended.append(Ended(call, outcome or "completed", math.ceil(talk - 1e-6)))

    def _attribute(self, iccid: str | None, changes: Changes) -> None:
        """Outgoing calls not told yet are told once the SIM in the slot is known."""
        if iccid is None:
            return
        for call in self.calls.values():
            if call.outgoing and not call.own and not call.told:
                call.iccid = iccid
                call.told = True
                changes.started.append(call)


class CallHandler(Protocol):
    """The bank side (:class:`simbank.daemon.outbound_calls.OutboundCalls`)."""

    def started(self, modem_id: str, call: WatchedCall) -> None:
        """An outgoing call the daemon did not place is on the modem (its SIM known)."""
        ...

    def ended(self, modem_id: str, ended: Ended) -> None:
        """A call told as started is no longer listed."""
        ...


class CallWatch:
    """One modem's calls, watched while the session is idle (see the module's doc)."""

    def __init__(
        self, modem_id: str, sim: SimIdentity, clock: Clock, steady: Callable[[], bool]
    ) -> None:
        self.modem_id = modem_id
        self.sim = sim
        self.clock = clock
        self._steady = steady
        self.tracker = CallTracker()
        self.handler: CallHandler | None = None
        self.poll_s = POLL_S
        self.live_poll_s = LIVE_POLL_S
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._refused_until = 0.0
        self._refusal_logged = False
        #: Polls answered (for tests and the log).
        self.polls = 0

    @property
    def live(self) -> bool:
        """A call (either direction) is listed on the modem: no slot switch now."""
        return self.tracker.live

    @contextlib.contextmanager
    def own_call(self) -> Iterator[None]:
        """Around the daemon's own ``call``: the outgoing call it places is not told."""
        self.tracker.own += 1
        try:
            yield
        finally:
            self.tracker.own -= 1

    async def changed(self, timeout_s: float) -> None:
        """Until the calls change (a call starts or ends), or ``timeout_s`` (loop seconds)."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, timeout_s)):
                await self._changed.wait()

    # -- from the session's URC callback (synchronous) --------------------------------------
    def on_report(self, report: CallReport) -> None:
        self._apply(self.tracker.reported(report, self.clock.now(), self.sim.iccid))
        self._wake.set()  # confirmed by a poll soon

    # -- the task ---------------------------------------------------------------------------
    async def run(self, driver: GenericDriver) -> None:
        """Poll until cancelled (the session cancels it when it ends)."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self.live_poll_s if self.live else self.poll_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            if not self._steady() or loop.time() < self._refused_until:
                continue
            if driver.channel.consecutive_timeouts:
                # The modem let a command time out: the session's liveness checks (bare ATs,
                # then a re-sync or a reboot) have the port until it answers again.
                continue
            asked = self.tracker.reports
            try:
                infos = await driver.list_calls()
            except PortLost:
                return  # the session's follow loop sees it too and ends the session
            except CommandError as exc:
                if exc.code is None or exc.code == NOT_SUPPORTED:
                    self._refused(exc, loop.time())
                else:
                    log.info("call_watch_poll_failed", error=str(exc))
                continue
            except (AtTimeout, ProtocolGarbage) as exc:
                log.warning("call_watch_poll_failed", error=str(exc), raw=exc.raw)
                continue
            self.polls += 1
            self._apply(self.tracker.listed(infos, self.clock.now(), self.sim.iccid, asked))

    def _refused(self, exc: CommandError, now: float) -> None:
        self._refused_until = now + REFUSED_BACKOFF_S
        if not self._refusal_logged:
            self._refusal_logged = True
            log.warning("call_watch_clcc_refused", error=str(exc), retry_in_s=REFUSED_BACKOFF_S)
        self._apply(self.tracker.forget(self.clock.now()))

    def _apply(self, changes: Changes) -> None:
        if not changes.started and not changes.ended:
            return
        self._changed.set()
        handler = self.handler
        for call in changes.started:
            log.info("outgoing_call_seen", iccid=call.iccid, call_id=call.id)
            if handler is not None:
                try:
                    handler.started(self.modem_id, call)
                except Exception:  # the bank side's failure must not stop the watch
                    log.exception("outgoing_call_not_handled")
        for ended in changes.ended:
            call = ended.call
            log.info(
                "call_no_longer_listed",
                direction=call.direction.name.lower(),
                outcome=ended.outcome,
                talk_s=ended.talk_s,
                own=call.own,
            )
            if call.told and handler is not None:
                try:
                    handler.ended(self.modem_id, ended)
                except Exception:
                    log.exception("outgoing_call_end_not_handled")
            elif call.outgoing and not call.own and not call.told:
                log.warning("outgoing_call_unattributed", talk_s=ended.talk_s)
