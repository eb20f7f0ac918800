"""Multi-step modem actions built from driver calls: selecting a slot, waiting for
registration, placing a call.

Each function owns its timeouts, so none of them can hang; their callers (the
commands, the inventory tour, a re-attach) hold the modem's action lock around them. A call's length is modem time: it is
dialled, timed and reported on the injected :class:`~simbank.clock.Clock`, so a scaled clock
runs it at the simulator's pace; AT command timeouts and the SIM-ready and registration
timeouts stay wall-clock seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Literal

import structlog

from simbank.at import Urc
from simbank.clock import Clock
from simbank.drivers.generic import GenericDriver
from simbank.drivers.types import CallCause, CallState, Registration, SimStatus
from simbank.errors import AtTimeout, CommandError, SimStateError

log = structlog.get_logger(__name__)

CALL_END_URCS = ("NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE")
#: 24.008 causes of a call that ended normally (16 normal clearing, 31 normal, unspecified).
NORMAL = frozenset({16, 31})
CLCC_POLL_S = 1.0
#: How long an unanswered call may ring before we give up (networks end it around 60 s).
RING_TIMEOUT_S = 90.0


@dataclass(frozen=True, slots=True)
class SwitchResult:
    slot: int
    status: SimStatus
    iccid: str | None
    registration: Registration | None

    @property
    def registered(self) -> bool:
        return self.registration is not None and self.registration.registered


async def select_and_wait(
    driver: GenericDriver, slot: int, sim_ready_timeout_s: float
) -> SimStatus:
    """Radio off → select ``slot`` → radio on → wait for ``+CPIN: READY`` (or a final state).

    The caller reads the ICCID back next: until then the card in the slot is unknown."""
    await driver.select_slot(slot)
    return await driver.wait_sim_ready(sim_ready_timeout_s)


async def wait_registration(
    driver: GenericDriver,
    registration_timeout_s: float,
    registration_settled: asyncio.Event | None = None,
) -> Registration | None:
    """Poll registration (woken early by ``registration_settled``, which a URC sets) until a
    domain registers, every domain is denied, or the timeout; returns the best seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + registration_timeout_s
    best: Registration | None = None
    while True:
        regs = await driver.registrations()
        registered = [r for r in regs if r.registered]
        best = registered[0] if registered else (regs[0] if regs else None)
        denied = [r for r in regs if r.stat == 3]
        if registered or loop.time() >= deadline:
            return best
        if denied and all(r.stat == 3 for r in regs):
            return denied[0]
        wait = min(1.0, max(0.0, deadline - loop.time()))
        if registration_settled is not None:
            registration_settled.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await registration_settled.wait()
        else:
            await asyncio.sleep(wait)


Outcome = Literal["completed", "busy", "no_answer", "failed"]

HANGUP_ON_CANCEL_S = 3.0


async def _hang_up_on_the_way_out(driver: GenericDriver) -> None:
    """The daemon is stopping mid-call: end the call instead of leaving it to run."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(HANGUP_ON_CANCEL_S):
            await driver.hangup()
    log.info("call_aborted_on_stop")


@dataclass(frozen=True, slots=True)
class CallResult:
    outcome: Outcome
    duration_s: int
    cause: CallCause | None


async def _call_end_within(ended: asyncio.Future[str], clock: Clock, seconds: float) -> str | None:
    """The URC that ended the call, or None after ``seconds`` of clock time without one.

    ``ended`` is never cancelled here (it outlives this wait, as under ``asyncio.shield``)."""
    timer = asyncio.create_task(clock.sleep(seconds), name="call-poll-gap")
    try:
        await asyncio.wait((ended, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        await asyncio.wait((timer,))
    return ended.result() if ended.done() and not ended.cancelled() else None


async def place_call(
    driver: GenericDriver, number: str, max_duration_s: float, clock: Clock
) -> CallResult:
    """Dial, follow the call (URCs and ``AT+CLCC``), hang up at ``max_duration_s`` of talk time,
    and read the end cause when the call did not end normally. Times (the ring limit, the
    talk time, the reported duration) are seconds of ``clock``."""
    ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_end(urc: Urc) -> None:
        if not ended.done():
            ended.set_result(urc.name)

    unsubscribes = [driver.channel.subscribe(name, on_end) for name in CALL_END_URCS]
    answered_at: float | None = None
    started = clock.monotonic()
    end: str | None = None
    try:
        try:
            await driver.dial(number)
        except SimStateError:
            raise  # the SIM refused, not the network: no call was placed (the supervisor re-reads it)
        except CommandError as exc:
            end = (exc.raw or "ERROR").strip()
        except asyncio.CancelledError:
            await _hang_up_on_the_way_out(driver)
            raise
        while end is None:
            now = clock.monotonic()
            if answered_at is not None and now - answered_at >= max_duration_s:
                with contextlib.suppress(CommandError, AtTimeout):
                    await driver.hangup()
                end = "HANGUP"
                break
            if answered_at is None and now - started >= RING_TIMEOUT_S:
                with contextlib.suppress(CommandError, AtTimeout):
                    await driver.hangup()
                end = "NO ANSWER"
                break
            # Poll often enough to see a short call answered.
            limit = min(CLCC_POLL_S, max(0.005, max_duration_s / 10))
            if answered_at is not None:
                limit = min(limit, max(0.0, max_duration_s - (now - answered_at)))
            try:
                end = await _call_end_within(ended, clock, limit)
            except asyncio.CancelledError:
                await _hang_up_on_the_way_out(driver)
                raise
            if end is not None:
                break
            try:
                calls = await driver.list_calls()
            except (CommandError, AtTimeout):
                continue
            except asyncio.CancelledError:
                await _hang_up_on_the_way_out(driver)
                raise
            if not calls and not ended.done():
                # The call is gone without a URC we saw (some modems only show it in CLCC).
                end = "NO CARRIER"
            elif answered_at is None and any(c.state is CallState.ACTIVE for c in calls):
                answered_at = clock.monotonic()
    finally:
        for unsubscribe in unsubscribes:
            unsubscribe()
        if not ended.done():
            ended.cancel()
    duration = round(clock.monotonic() - answered_at) if answered_at is not None else 0
    if end == "HANGUP" or (answered_at is not None and end == "NO CARRIER"):
        return CallResult("completed", duration, None)
    if end == "BUSY":
        return CallResult("busy", 0, None)
    cause: CallCause | None = None
    with contextlib.suppress(CommandError, AtTimeout):
        cause = await driver.last_call_cause()
    if end == "NO ANSWER":
        return CallResult("no_answer", 0, cause)
    if answered_at is None and end == "NO CARRIER" and cause is not None and cause.code in NORMAL:
        # Answered and ended between two polls: charge the whole time since dialling.
        return CallResult("completed", round(clock.monotonic() - started), cause)
    return CallResult("failed", duration, cause)
