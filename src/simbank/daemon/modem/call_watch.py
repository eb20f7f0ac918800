"""Calls on one modem whoever dials them: a PBX on the modem's other AT port, or a person.

While the session is online and not switching, :class:`CallWatch` asks ``AT+CLCC`` every
:data:`POLL_S` (every :data:`LIVE_POLL_S` while a call is listed) and hears the ``+CLCC``
URCs a dialect can be asked for (SIMCom ``AT+CLCC=1``, capability ``call_reports``; they may
be routed to the other port, so the poll is the safety net). The pure :class:`CallTracker`
turns those answers into calls that start and end:

- a **mobile-originated** call is told to the :class:`CallHandler` (the bank side,
  :mod:`simbank.daemon.outbound_calls`) once its SIM is known (again at the next sighting if
  the handler failed), and again when it is no longer listed, with its talk time and outcome
  (``completed`` if it was ever active, else ``no_answer``) — except the daemon's own ``call``
  (:meth:`CallWatch.own_call`: the new outgoing call with the number it dialled), which is
  booked already;
- a **mobile-terminated** call is :mod:`.ringing`'s business (it is never told here), but it
  makes the modem busy all the same.

Only voice entries are calls (``<mode>`` 0, or 9 unknown): a data or fax entry some modems list
is not. Talk time runs from the first sighting as active to the end: heard as it happened
(a ``+CLCC`` URC), or else no later than the last sighting plus one live poll
(:attr:`CallTracker.grace_s`): a call that ended while nobody could ask (a lost port, a
reboot) is not charged for the outage.

While any call is listed :attr:`CallWatch.live` holds: nothing switches the modem's slot, and a
switch asks ``AT+CLCC`` once more first (:meth:`CallWatch.poll`). The calls outlive a session
(a lost port does not end them): the next session's first answer says whether they are still
there. A modem that never answered ``AT+CLCC`` in this session and refuses it
:data:`REFUSALS_TO_BACK_OFF` times running (a plain ``ERROR`` or ``+CME ERROR: 4``) is not
asked again for :data:`REFUSED_BACKOFF_S` (logged once; the calls it followed end ``unknown``);
once it has answered, a refusal, a timeout or a garbled answer is one failed poll, never the
end of the calls or of the session.
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
#: A poll waits this long at most (loop seconds) for the port to have nothing in flight, so it
#: does not queue behind a command that may be about to time out; it looks this often.
IDLE_WAIT_S = 1.0
IDLE_STEP_S = 0.05
#: A modem that refuses ``AT+CLCC`` (a plain ``ERROR``) this many times running, never having
#: answered it in the session...
REFUSALS_TO_BACK_OFF = 3
#: ...is left alone this long.
REFUSED_BACKOFF_S = 3600.0
#: 27.007 ``+CME ERROR: 4`` (operation not supported) counts as such a refusal.
NOT_SUPPORTED = 4
#: Loop seconds added to the live poll for a call's end unheard: an answer's round trip and
#: the loop's lateness (see :attr:`CallTracker.grace_s`).
END_MARGIN_S = 1.0
#: ``<mode>`` of the entries that are calls: voice, and 9 (unknown) as 27.007 allows.
VOICE_MODES = frozenset({0, 9})
_LIVE_STATES = frozenset({CallState.ACTIVE, CallState.HELD})


def same_number(listed: str, dialled: str) -> bool:
    """Whether the number a modem lists is the one dialled: digits only, international or
    national prefixes aside (``+44 7700 900123``, ``447700900123``, ``07700900123``), the
    shorter the tail of the longer (at least six digits)."""
    a = "".join(ch for ch in listed if ch.isdigit()).lstrip("0")
    b = "".join(ch for ch in dialled if ch.isdigit()).lstrip("0")
    if not a or not b:
        return False
    short, long_ = sorted((a, b), key=len)
    return short == long_ or (len(short) >= 6 and long_.endswith(short))


@dataclass(eq=False)
class WatchedCall:
    """One call listed by the modem (compared by identity: the bank side keys on it)."""

    id: int
    direction: CallDirection
    number: str | None
    first_seen: float  # clock seconds
    iccid: str | None = None  # the SIM read back in the slot when it was attributed
    active_since: float | None = None
    #: The last answer or URC that listed it (clock seconds).
    last_seen: float = 0.0
    #: The daemon's own ``call`` placed it: booked already, never told.
    own: bool = False
    #: Told to the handler as started (an outgoing call whose SIM is known), and the handler
    #: took it: until then it is told again at each sighting.
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


@dataclass(eq=False)
class _Dial:
    """The daemon's own ``call`` under way: the number it dialled, and the call that is it."""

    number: str
    call: WatchedCall | None = None


class CallTracker:
    """The calls a modem lists, by call id (pure: fed answers and a clock reading)."""

    def __init__(self, grace_s: float = LIVE_POLL_S + END_MARGIN_S) -> None:
        self.calls: dict[int, WatchedCall] = {}
        #: A call no longer listed ended at most this long (clock seconds) after it was last
        #: seen: one live poll and a margin (:class:`CallWatch` keeps it in step).
        self.grace_s = grace_s
        #: The daemon's own calls under way (:meth:`own_call`).
        self._dials: list[_Dial] = []
        #: ``+CLCC`` URCs applied so far. A poll's answer is older than every URC heard after
        #: the poll was sent (a modem may write a URC before the final result of an answer it
        #: made earlier), so it never overrules them: see :meth:`listed`.
        self.reports = 0
        #: Calls a URC ended, by id: the count of reports when it did.
        self._ended_by_report: dict[int, int] = {}

    @property
    def live(self) -> bool:
        return bool(self.calls)

    @contextlib.contextmanager
    def own_call(self, number: str) -> Iterator[None]:
        """Around the daemon's own ``call`` to ``number``: the one new outgoing call listed
        with that number (or, listed without one, the only new outgoing call) is its."""
        dial = _Dial(number)
        self._dials.append(dial)
        try:
            yield
        finally:
            self._dials.remove(dial)

    def listed(
        self, infos: list[CallInfo], now: float, iccid: str | None, asked: int | None = None
    ) -> Changes:
        """A whole ``AT+CLCC`` answer: every call not in it has ended — except those a URC
        spoke of after the question (``asked``: :attr:`reports` when ``AT+CLCC`` was sent;
        None: now). A call a newer URC ended is not brought back by the older answer."""
        asked = self.reports if asked is None else asked
        changes = Changes()
        seen: set[int] = set()
        new: list[WatchedCall] = []
        for info in infos:
            if info.mode not in VOICE_MODES or self._ended_by_report.get(info.id, 0) > asked:
                continue
            seen.add(info.id)
            call = self.calls.get(info.id)
            if call is None or call.reported_at <= asked:
                self._update(info, now, changes, new)
        for call_id in [c for c, call in self.calls.items() if c not in seen]:
            if self.calls[call_id].reported_at <= asked:
                self._end(call_id, now, changes)
        self._ended_by_report = {k: v for k, v in self._ended_by_report.items() if v > asked}
        self._claim(new)
        self._attribute(iccid, changes)
        return changes

    def reported(self, report: CallReport, now: float, iccid: str | None) -> Changes:
        """One ``+CLCC`` URC: one call's new state, or its end."""
        self.reports += 1
        changes = Changes()
        if report.info is None:
            self._ended_by_report[report.call_id] = self.reports
            if report.call_id in self.calls:
                self._end(report.call_id, now, changes, heard=True)
        elif report.info.mode in VOICE_MODES:
            new: list[WatchedCall] = []
            self._ended_by_report.pop(report.info.id, None)
            self._update(report.info, now, changes, new)
            self.calls[report.info.id].reported_at = self.reports
            self._claim(new)
        self._attribute(iccid, changes)
        return changes

    def forget(self, now: float) -> Changes:
        """No longer followed (``AT+CLCC`` refused): every call ends, outcome ``unknown`` —
        a call that could never be seen to end must not keep the modem busy for ever."""
        changes = Changes()
        for call_id in list(self.calls):
            self._end(call_id, now, changes, outcome="unknown")
        return changes

    def _update(self, info: CallInfo, now: float, changes: Changes, new: list[WatchedCall]) -> None:
        call = self.calls.get(info.id)
        if call is not None and not call.same_as(info):
            self._end(info.id, now, changes)  # the id was reused by a new call meanwhile
            call = None
        if call is None:
            call = WatchedCall(info.id, info.direction, info.number, now)
            self.calls[info.id] = call
            new.append(call)
        call.last_seen = now
        if call.number is None and info.number is not None:
            call.number = info.number
        if not call.states or call.states[-1] is not info.state:
            call.states.append(info.state)
        if call.active_since is None and info.state in _LIVE_STATES:
            call.active_since = now

    def _claim(self, new: list[WatchedCall]) -> None:
        """The daemon's own calls under way take the new outgoing calls that are theirs: the
        one with the number dialled, or the only new one when it is listed without a number.
        Any other is someone else's (told as usual)."""
        outgoing = [c for c in new if c.outgoing]
        for dial in self._dials:
            if dial.call is not None:
                continue
            free = [c for c in outgoing if not c.own]
            match = [c for c in free if c.number and same_number(c.number, dial.number)]
            if not match and len(outgoing) == 1 and free and free[0].number is None:
                match = free
            if match:
                match[0].own = True
                dial.call = match[0]

    def _end(
        self,
        call_id: int,
        now: float,
        changes: Changes,
        *,
        outcome: Outcome | None = None,
        heard: bool = False,
    ) -> None:
        """``heard``: the end was reported as it happened (a URC); otherwise it came no later
        than the last sighting and one poll (:attr:`grace_s`)."""
        call = self.calls.pop(call_id)
        if call.active_since is None:
            changes.ended.append(Ended(call, outcome or "no_answer", 0))
        else:
            end = now if heard else min(now, call.last_seen + self.grace_s)
            talk = max(0.0, end - call.active_since)
            changes.ended.append(Ended(call, outcome or "completed", math.ceil(talk - 1e-6)))

    def _attribute(self, iccid: str | None, changes: Changes) -> None:
        """Outgoing calls not told yet are told once the SIM in the slot is known (and again
        at each sighting until the handler takes them: :meth:`CallWatch._apply`)."""
        if iccid is None:
            return
        for call in self.calls.values():
            if call.outgoing and not call.own and not call.told:
                if call.iccid is None:
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

    def unattributed(self, modem_id: str, ended: Ended) -> None:
        """An outgoing call (not the daemon's) ended before the SIM in the slot was known."""
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
        #: ``AT+CLCC`` refused this many times running (reset by an answer).
        self._refusals = 0
        #: ``AT+CLCC`` answered in this session: a refusal is then one failed poll.
        self._answered = False
        #: Answers applied while the SIM in the slot was known (those that can tell a call),
        #: since the daemon started: the bank side adopts a call left open by an earlier run
        #: only from the first of them.
        self.polls = 0

    @property
    def live_poll_s(self) -> float:
        """Loop seconds between polls while a call is listed."""
        return self._live_poll_s

    @live_poll_s.setter
    def live_poll_s(self, seconds: float) -> None:
        self._live_poll_s = seconds
        per_clock_s = self.clock.real(1.0)  # wall seconds one clock second takes
        scale = 1.0 / per_clock_s if per_clock_s > 0 else 1.0
        self.tracker.grace_s = (seconds + END_MARGIN_S) * scale

    @property
    def live(self) -> bool:
        """A call (either direction) is listed on the modem: no slot switch now."""
        return self.tracker.live

    @property
    def backed_off(self) -> bool:
        """``AT+CLCC`` is not asked now: the modem refused it (:data:`REFUSALS_TO_BACK_OFF`)."""
        return asyncio.get_running_loop().time() < self._refused_until

    def own_call(self, number: str) -> contextlib.AbstractContextManager[None]:
        """Around the daemon's own ``call`` to ``number`` (the dial string): the outgoing call
        it places is not told; any other that appears meanwhile is."""
        return self.tracker.own_call(number)

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
    def session_started(self) -> None:
        """A new session on the port: whether the modem answers ``AT+CLCC`` is learnt anew."""
        self._answered = False
        self._refusals = 0

    @staticmethod
    async def _until_idle(driver: GenericDriver) -> None:
        """Until no command is in flight or queued on the port, for at most
        :data:`IDLE_WAIT_S`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(IDLE_WAIT_S):
                while not driver.channel.idle:  # noqa: ASYNC110 -- a flag of the channel, looked at for a second at most
                    await asyncio.sleep(IDLE_STEP_S)

    async def run(self, driver: GenericDriver) -> None:
        """Poll until cancelled (the session cancels it when it ends). A call already listed
        (seen by the session's first question, or left from the last session) is asked about
        at once."""
        first = True
        while True:
            if not (first and self.live):
                wait = self.live_poll_s if self.live else self.poll_s
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
            first = False
            self._wake.clear()
            if not self._steady() or self.backed_off:
                continue
            if not driver.channel.idle:
                # Not behind the session's commands: one of them may be about to time out
                # (a list of stored SMS waits up to 40 s). Still busy: next round.
                await self._until_idle(driver)
                if not driver.channel.idle:
                    continue
            if driver.channel.consecutive_timeouts:
                # The modem let a command time out: the session's liveness checks (bare ATs,
                # then a re-sync or a reboot) have the port until it answers again.
                continue
            try:
                await self.poll(driver)
            except PortLost:
                return  # the session's follow loop sees it too and ends the session

    async def poll(self, driver: GenericDriver) -> bool:
        """One ``AT+CLCC``, its answer applied; whether the modem answered. A refusal, a
        timeout or garbage is logged and changes nothing (a modem that never answered in this
        session is left alone after :data:`REFUSALS_TO_BACK_OFF` refusals); ``PortLost``
        goes up. Also a switch's last look (:meth:`ModemSupervisor.switch_to`)."""
        asked = self.tracker.reports
        try:
            infos = await driver.list_calls()
        except CommandError as exc:
            if (exc.code is None or exc.code == NOT_SUPPORTED) and not self._answered:
                self._refusals += 1
                if self._refusals >= REFUSALS_TO_BACK_OFF:
                    self._refused(exc)
                    return False
            log.info("call_watch_poll_failed", error=str(exc), refusals=self._refusals)
            return False
        except (AtTimeout, ProtocolGarbage) as exc:
            log.warning("call_watch_poll_failed", error=str(exc), raw=exc.raw)
            return False
        self._answered = True
        self._refusals = 0
        iccid = self.sim.iccid
        if iccid is not None:
            self.polls += 1
        self._apply(self.tracker.listed(infos, self.clock.now(), iccid, asked))
        return True

    def _refused(self, exc: CommandError) -> None:
        self._refused_until = asyncio.get_running_loop().time() + REFUSED_BACKOFF_S
        if not self._refusal_logged:
            self._refusal_logged = True
            log.warning(
                "call_watch_clcc_refused",
                error=str(exc),
                refusals=self._refusals,
                retry_in_s=REFUSED_BACKOFF_S,
            )
        self._apply(self.tracker.forget(self.clock.now()))

    def _apply(self, changes: Changes) -> None:
        if not changes.started and not changes.ended:
            return
        self._changed.set()
        for call in changes.started:
            log.info("outgoing_call_seen", iccid=call.iccid, call_id=call.id)
            self._tell_started(call)
        handler = self.handler
        for ended in changes.ended:
            call = ended.call
            log.info(
                "call_no_longer_listed",
                direction=call.direction.name.lower(),
                outcome=ended.outcome,
                talk_s=ended.talk_s,
                own=call.own,
            )
            if call.outgoing and not call.own and not call.told and call.iccid is not None:
                # Attributed, but the handler failed at every sighting: its last chance.
                call.told = True
                self._tell_started(call)
            if call.told and handler is not None:
                try:
                    handler.ended(self.modem_id, ended)
                except Exception:
                    log.exception("outgoing_call_end_not_handled")
            elif call.outgoing and not call.own and not call.told:
                if call.iccid is not None:  # the handler refused it to the end
                    log.warning("outgoing_call_lost", talk_s=ended.talk_s)
                    continue
                log.warning("outgoing_call_unattributed", talk_s=ended.talk_s)
                if handler is not None:
                    try:
                        handler.unattributed(self.modem_id, ended)
                    except Exception:
                        log.exception("outgoing_call_end_not_handled")

    def _tell_started(self, call: WatchedCall) -> None:
        """Told for good once the handler took it; a failure is retried at the next
        sighting (and at the call's end)."""
        handler = self.handler
        if handler is None:
            return  # nobody to tell (a bare session)
        try:
            handler.started(self.modem_id, call)
        except Exception:  # the bank side's failure must not stop the watch
            log.exception("outgoing_call_not_handled", call_id=call.id)
            call.told = False
