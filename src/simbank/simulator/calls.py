"""Voice calls: the called party's behaviour and the call's progress over simulated time.

A modem has one radio and so one call, whichever of its AT ports placed it (``Call.port``):
that port gets the dial's late final result and the call-end line (``NO CARRIER``, ``BUSY``…);
the URC port gets ``^CEND`` and, after ``AT+CLCC=1`` on a model with ``clcc_urc`` (SIMCom),
a ``+CLCC`` line on every state change (:func:`report_state`), stat 6 when the call ends.
"""

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
#: ``+CLCC`` stat of a call that has just ended (SIMCom's URC only; 27.007 lists 0-5).
STAT_DISCONNECT = 6


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


def clcc_line(call: Call, stat: int | None = None) -> str:
    """The call as ``AT+CLCC`` lists it (and SIMCom's URC reports it): ``+CLCC: <idx>,<dir>,
    <stat>,<mode>,<mpty>,"<number>",<type>`` (``stat`` overrides the call's, e.g. 6)."""
    kind = 145 if call.number.startswith("+") else 129 if call.number else 128
    direction = 1 if call.incoming else 0
    state = call.stat if stat is None else stat
    return f'+CLCC: 1,{direction},{state},0,0,"{call.number}",{kind}'


def report_state(modem: SimulatedModem, call: Call, stat: int | None = None) -> None:
    """After ``AT+CLCC=1``: the call's new state as a ``+CLCC`` URC (on the URC port)."""
    if modem.settings.clcc:
        modem.urc(clcc_line(call, stat))


def start_call(
    modem: SimulatedModem, number: str, fail_cause: int | None = None, *, port: int = 1
) -> None:
    """Set a call up (``ATD`` on AT port ``port`` answered OK, or not yet: ``Habits.dial_ok``);
    ``fail_cause`` ends it at once."""
    dial_open = modem.habits.dial_ok != "immediate"
    modem.call = Call(number=number, started=modem.clock.now(), dial_open=dial_open, port=port)
    modem.run_named("call", _progress(modem, fail_cause))


async def _progress(modem: SimulatedModem, fail_cause: int | None) -> None:
    call = modem.call
    if call is None:
        return
    timing = modem.timing
    await modem.clock.sleep(0)  # the ATD's OK goes out first
    report_state(modem, call)
    if fail_cause is not None:
        finish_call(modem, "NO CARRIER", fail_cause)
        return
    await modem.clock.sleep(min(1.0, timing.ring_s))
    call.stat = 3  # alerting
    report_state(modem, call)
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
    report_state(modem, call)
    if call.dial_open:  # B2: Wavecom OK on answer; ZTE CONNECT
        call.dial_open = False
        modem.final("OK" if modem.habits.dial_ok == "on_answer" else "CONNECT", call.port)
    modem.carrier.stats.calls_answered += 1
    if modem.sim is not None:
        modem.sim.charge_call()
    await modem.clock.sleep(timing.talk_s)
    finish_call(modem, "NO CARRIER", NORMAL_CLEARING)


def finish_call(modem: SimulatedModem, result: str | None, cause: int) -> None:
    """End the call: final line (None for a local hang-up) to the call's port, cause for CEER,
    Huawei ^CEND (then the 27.007 result too on a ``call_end_twice`` model, E4), a ``+CLCC``
    stat 6 URC after ``AT+CLCC=1`` (before the final line; after the hang-up's OK)."""
    call = modem.call
    if call is None:
        return
    modem.call = None
    modem.cancel("call")
    gone = clcc_line(call, STAT_DISCONNECT) if modem.settings.clcc else None
    modem.last_cause = CALL_CAUSES.get(cause, "Normal, unspecified")
    modem.last_cause_code = cause
    duration = int(modem.clock.now() - call.answered) if call.answered is not None else 0
    cend = f"^CEND: 1,{duration},104,{cause}" if modem.dialect.cend else None
    if result is None:
        later = [line for line in (gone, cend) if line is not None]
        if later:  # local hang-up: the URCs follow the command's OK
            modem.spawn(_later(modem, later), "cend")
        return
    if gone is not None:
        modem.urc(gone)
    if call.dial_open:  # the ATD is still waiting for its final result (B2)
        if cend is not None:
            modem.urc(cend)
        modem.final(result if modem.habits.dial_ok == "on_answer" else "OK", call.port)
        return
    if cend is not None:
        modem.urc(cend)
        if not modem.habits.call_end_twice:
            return  # B1: E1752 reports ^CEND alone
    if modem.habits.dial_ok == "never" and result == "NO CARRIER":
        result = "HANGUP: 1"  # B2: ZTE/Qualcomm remote hang-up
    modem.call_line(result, call.port)


def hang_up(modem: SimulatedModem, port: int, command: str) -> None:
    """``ATH``/``AT+CHUP`` on AT port ``port`` (recorded in ``modem.hangups``). The one radio
    ends the call whichever port placed it; the port that placed or answered it, if another,
    hears ``NO CARRIER`` (or its still-open ``ATD`` its final result)."""
    call = modem.call
    if call is None:
        return
    modem.hangups.append(command)
    finish_call(modem, None, NORMAL_CLEARING)
    if call.port is None or call.port == port:
        return
    if call.dial_open:
        modem.final("NO CARRIER" if modem.habits.dial_ok == "on_answer" else "OK", call.port)
    else:
        modem.call_line("NO CARRIER", call.port)


async def _later(modem: SimulatedModem, lines: list[str]) -> None:
    await modem.clock.sleep(0)
    for line in lines:
        modem.urc(line)
