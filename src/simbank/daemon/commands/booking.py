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
    """Committed bookings (one per SMS segment, else one); the act sets ``outcome`` (and a
    call its ``duration_s``), which every row is completed with."""

    ids: list[int]
    iccid: str
    outcome: str = UNKNOWN
    #: Charged on completion: a call's reserved time unless the act says otherwise.
    duration_s: int = 0

    @property
    def id(self) -> int:
        """The first booking's id."""
        return self.ids[0]


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
    count: int = 1,
) -> AsyncIterator[Booking]:
    """Book ``kind`` ``count`` times for ``iccid`` (an SMS text's segments: each is one SMS
    against the quota), let the body act, then complete every booking.

    Each row is committed on its own before the act; should booking fail part-way, the rows
    already booked are completed ``unknown`` (charged). ``destination`` is the number in
    clear (the ledger keeps only its keyed hash).
    """
    if count < 1:
        raise ValueError(f"book at least one, not {count}")
    booking = Booking([], iccid, duration_s=reserved_s)
    try:
        for _ in range(count):
            booking.ids.append(
                runtime.ledger.book(
                    iccid,
                    kind,
                    runtime.clock.now(),
                    reserved_s=reserved_s,
                    destination=destination,
                    modem=modem,
                    transaction=transaction,
                )
            )
        runtime.publish_sim(iccid)
        yield booking
    finally:
        # An unknown end (the modem vanished mid-call, a failed send) stays charged.
        for booking_id in booking.ids:
            runtime.ledger.complete(
                booking_id, runtime.clock.now(), booking.outcome, booking.duration_s
            )
        if booking.ids:
            runtime.publish_sim(iccid)
