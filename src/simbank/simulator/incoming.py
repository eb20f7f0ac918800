"""Inbound voice calls: someone calls the SIM in the active slot.

:func:`incoming_call` (the test hook ``SimulatedModem.incoming_call``) makes the modem ring:
``RING`` — ``+CRING: VOICE`` after ``AT+CRC=1`` — every ``Timing.incoming_ring_s`` of
simulated time, each followed by ``+CLIP: "<number>",145,,,,0`` after ``AT+CLIP=1``
(``+CLIP: "",128,,,,1`` for a withheld number), until it is answered (``ATA``, or
``SimulatedModem.answer`` for a PBX on another port), hung up (``ATH``/``AT+CHUP``: recorded in
``SimulatedModem.hangups``) or the caller gives up after ``rings`` rings (nothing more is said,
as on most modems). ``AT+CLCC`` lists it as ``+CLCC: 1,1,4,…`` (incoming) while it rings and
``…,1,0,…`` once answered; an answered call ends after ``Timing.talk_s`` with ``NO CARRIER``
(on the port whose ``ATA`` answered it; on the URC port after the hook). The rings go to the
modem's URC port only; ``ATA`` on any of its AT ports answers. After ``AT+CLCC=1`` (SIMCom)
``+CLCC: 1,1,4,…`` comes before the first ring, ``…,1,0,…`` on answer and ``…,1,6,…`` when the
caller gives up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from simbank.simulator.at_server import Command, Kind
from simbank.simulator.calls import NORMAL_CLEARING, STAT_DISCONNECT, finish_call, report_state
from simbank.simulator.results import Reply, cme, plain
from simbank.simulator.state import Call

if TYPE_CHECKING:
    from simbank.simulator.modem import SimulatedModem

Handler = Callable[[Command], Reply]

STAT_ACTIVE = 0
STAT_INCOMING = 4
#: +CLIP's type of number and CLI validity for a withheld caller (27.007 §7.6).
WITHHELD_TYPE = 128
CLI_WITHHELD = 1


def ring_lines(modem: SimulatedModem, call: Call) -> list[str]:
    """One ring as the modem's settings say it: the ring, then the caller if asked for."""
    lines = ["+CRING: VOICE" if modem.settings.crc else "RING"]
    if modem.settings.clip:
        if call.number:
            kind = 145 if call.number.startswith("+") else 129
            lines.append(f'+CLIP: "{call.number}",{kind},,,,0')
        else:
            lines.append(f'+CLIP: "",{WITHHELD_TYPE},,,,{CLI_WITHHELD}')
    return lines


def incoming_call(modem: SimulatedModem, number: str | None, rings: int) -> None:
    """Someone (``number``; None: withheld) calls; they give up after ``rings`` rings."""
    if modem.call is not None:
        raise RuntimeError(f"{modem.id} already carries a call")
    call = Call(number=number or "", stat=STAT_INCOMING, started=modem.clock.now(), incoming=True)
    modem.call = call
    report_state(modem, call)
    modem.run_named("call", _ringing(modem, call, rings))


async def _ringing(modem: SimulatedModem, call: Call, rings: int) -> None:
    for _ in range(rings):
        if modem.call is not call:
            return
        for line in ring_lines(modem, call):
            modem.urc(line)
        await modem.clock.sleep(modem.timing.incoming_ring_s)
    if modem.call is call:  # the caller gave up: the modem says nothing more (but +CLCC)
        modem.call = None
        report_state(modem, call, STAT_DISCONNECT)


def answer(modem: SimulatedModem) -> bool:
    """Answer the ringing call (``ATA``, or a PBX on the modem's other port): True if one
    rang. It then lasts ``Timing.talk_s`` and the caller hangs up (``NO CARRIER``)."""
    call = modem.call
    if call is None or not call.incoming or call.stat != STAT_INCOMING:
        return False
    call.stat = STAT_ACTIVE
    call.answered = modem.clock.now()
    report_state(modem, call)
    modem.run_named("call", _talk(modem, call))
    return True


async def _talk(modem: SimulatedModem, call: Call) -> None:
    await modem.clock.sleep(modem.timing.talk_s)
    if modem.call is call:
        finish_call(modem, "NO CARRIER", NORMAL_CLEARING)


class IncomingCommands:
    """``AT+CLIP``, ``AT+CRC`` and ``ATA`` on one modem (``SimulatedModem.refused_commands``
    makes a model that refuses them)."""

    def __init__(self, modem: SimulatedModem) -> None:
        self.m = modem
        self.table: dict[str, Handler] = {"+CLIP": self._clip, "+CRC": self._crc, "A": self._ata}

    def _clip(self, c: Command) -> Reply:
        if c.kind is Kind.READ:
            return Reply(lines=[f"+CLIP: {self.m.settings.clip},1"])
        value = c.int_arg(0, 0)
        if value not in (0, 1):
            raise plain()
        self.m.settings.clip = int(value or 0)
        return Reply()

    def _crc(self, c: Command) -> Reply:
        if c.kind is Kind.READ:
            return Reply(lines=[f"+CRC: {self.m.settings.crc}"])
        value = c.int_arg(0, 0)
        if value not in (0, 1):
            raise plain()
        self.m.settings.crc = int(value or 0)
        return Reply()

    def _ata(self, _c: Command) -> Reply:
        if not answer(self.m):
            raise cme(3) if self.m.call is not None else plain("NO CARRIER")
        if self.m.call is not None:
            self.m.call.port = self.m.serving_port  # its end is reported to this port
        return Reply()
