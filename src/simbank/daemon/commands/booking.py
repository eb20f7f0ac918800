"""Book before act: the one step every chargeable command (call, SMS, USSD) goes through.

The ledger commits the booking before the AT command goes out; whatever happens to the act
(an answer, ``Refused``, a timeout, a lost port, a cancellation), the booking is completed
with the outcome known by then. A booking whose outcome never arrives (an error, a crash,
an unplug) is completed ``unknown`` and stays charged in full. The SIM's retained state is
published once booked and once completed, so its usage shows the booking at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from simbank.bank.usage import UsageKind
from simbank.daemon.runtime import BankRuntime

UNKNOWN = "unknown"


@dataclass(slots=True)
class Booking:
    """A committed booking; the act sets ``outcome`` (and a call its ``duration_s``)."""

    id: int
    iccid: str
    outcome: str = UNKNOWN
    #: Charged on completion: a call's reserved time unless the act says otherwise.
    duration_s: int = 0


@asynccontextmanager
async def booked(
    runtime: BankRuntime,
    iccid: str,
    kind: UsageKind,
    *,
    modem: str,
    transaction: str | None,
    reserved_s: int = 0,
    destination: str | None = None,
) -> AsyncIterator[Booking]:
    """Book ``kind`` for ``iccid``, let the body act, then complete the booking.

    ``destination`` is the number in clear (the ledger keeps only its keyed hash).
    """
    booking = Booking(
        runtime.ledger.book(
            iccid,
            kind,
            runtime.clock.now(),
            reserved_s=reserved_s,
            destination=destination,
            modem=modem,
            transaction=transaction,
        ),
        iccid,
        duration_s=reserved_s,
    )
    runtime.publish_sim(iccid)
    try:
        yield booking
    finally:
        # An unknown end (the modem vanished mid-call, a failed send) stays charged.
        runtime.ledger.complete(
            booking.id, runtime.clock.now(), booking.outcome, booking.duration_s
        )
        runtime.publish_sim(iccid)
