"""Voice calls: the called party's behaviour and the call's progress over simulated time."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from simbank.drivers.parse.causes import CALL_CAUSES
from simbank.simulator.state import Call

if TYPE_CHECKING:
    from simbank.simulator.modem import SimulatedModem

NORMAL_CLEARING = 16
USER_BUSY = 17
NO_ANSWER_CAUSE = 19
BARRING = 8
UNSPECIFIED = 31


class Party(enum.Enum):
    """What the called number does (from its last two digits)."""

    ANSWERS = "answers"  # 00-89
    BUSY = "busy"  # 90-94
    NO_ANSWER = "no_answer"  # 95-99


def called_party(number: str) -> Party:
    """00-89 answers, 90-94 busy, 95-99 no answer (non-digit tails answer)."""
    digits = "".join(c for c in number if c.isdigit())
    tail = int(digits[-2:]) if len(digits) >= 2 else 0
    if tail >= 95:
        return Party.NO_ANSWER
    if tail >= 90:
        return Party.BUSY
    return Party.ANSWERS


def start_call(modem: SimulatedModem, number: str, fail_cause: int | None = None) -> None:
    """Set a call up (``ATD`` answered OK, or not yet: ``Habits.dial_ok``); ``fail_cause``
    ends it at once."""
    dial_open = modem.habits.dial_ok != "immediate"
    modem.call = Call(number=number, started=modem.clock.now(), dial_open=dial_open)
    modem.run_named("call", _progress(modem, fail_cause))


async def _progress(modem: SimulatedModem, fail_cause: int | None) -> None:
    call = modem.call
    if call is None:
        return
    timing = modem.timing
    await modem.clock.sleep(0)
    if fail_cause is not None:
        finish_call(modem, "NO CARRIER", fail_cause)
        return
    await modem.clock.sleep(min(1.0, timing.ring_s))
    call.stat = 3  # alerting
    party = called_party(call.number)
    if party is Party.BUSY:
        await modem.clock.sleep(timing.ring_s)
        finish_call(modem, "BUSY", USER_BUSY)
        return
    if party is Party.NO_ANSWER:
        await modem.clock.sleep(timing.no_answer_s)
        finish_call(modem, "NO ANSWER", NO_ANSWER_CAUSE)
        return
    await modem.clock.sleep(timing.ring_s)
    call.stat = 0
    call.answered = modem.clock.now()
    if call.dial_open:  # B2: Wavecom OK on answer; ZTE CONNECT
        call.dial_open = False
        modem.final("OK" if modem.habits.dial_ok == "on_answer" else "CONNECT")
    modem.carrier.stats.calls_answered += 1
    if modem.sim is not None:
        modem.sim.charge_call()
    await modem.clock.sleep(timing.talk_s)
    finish_call(modem, "NO CARRIER", NORMAL_CLEARING)


def finish_call(modem: SimulatedModem, result: str | None, cause: int) -> None:
    """End the call: final URC (None for a local hang-up), cause for CEER, Huawei ^CEND
    (then the 27.007 result too on a ``call_end_twice`` model, E4)."""
    call = modem.call
    if call is None:
        return
    modem.call = None
    modem.cancel("call")
    modem.last_cause = CALL_CAUSES.get(cause, "Normal, unspecified")
    modem.last_cause_code = cause
    duration = int(modem.clock.now() - call.answered) if call.answered is not None else 0
    cend = f"^CEND: 1,{duration},104,{cause}" if modem.dialect.cend else None
    if result is None:
        if cend is not None:  # local hang-up: the URC follows the command's OK
            modem.spawn(_later(modem, cend), "cend")
        return
    if call.dial_open:  # the ATD is still waiting for its final result (B2)
        if cend is not None:
            modem.urc(cend)
        modem.final(result if modem.habits.dial_ok == "on_answer" else "OK")
        return
    if cend is not None:
        modem.urc(cend)
        if not modem.habits.call_end_twice:
            return  # B1: E1752 reports ^CEND alone
    if modem.habits.dial_ok == "never" and result == "NO CARRIER":
        result = "HANGUP: 1"  # B2: ZTE/Qualcomm remote hang-up
    modem.urc(result)


async def _later(modem: SimulatedModem, line: str) -> None:
    await modem.clock.sleep(0)
    modem.urc(line)
