"""Which SIM sits in a modem's active slot: the SIM identity invariant, in one place.

From the moment anything can have changed the card in the active slot (a slot select,
``AT+CFUN=1,1``, ``RDY``, ``+CPIN: NOT READY``, a port re-opened, a hot-plug URC) until its
ICCID has been read back, the modem's SIM is *unknown*: no registration, signal, usage or block
evidence may be attributed to any ICCID meanwhile.

A read-back counts only if nothing changed while it was under way: :meth:`begin_read` hands out
a token (the change generation), and :meth:`read_back` ignores a token that a later change made
stale — the answer may describe the card that was there before. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReadToken:
    """A read-back in progress, started at change generation ``generation``."""

    generation: int


class SimIdentity:
    """The card in one modem's active slot, as far as we know."""

    def __init__(self) -> None:
        self._generation = 0
        self._known = False
        self._iccid: str | None = None
        self._slot: int | None = None
        #: Why the SIM became unknown last (for logs): "switch", "reset", "urc:RDY", …
        self.reason = "start"

    # -- changes --------------------------------------------------------------------------
    def changed(self, reason: str) -> None:
        """Something may have put another card (or none) in the slot: unknown from now on."""
        self._generation += 1
        self._known = False
        self.reason = reason

    def begin_read(self) -> ReadToken:
        """Call right before sending the command that reads the ICCID."""
        return ReadToken(self._generation)

    def read_back(self, token: ReadToken, slot: int, iccid: str | None) -> bool:
        """The card's ICCID (None: no card) as read; adopted only if nothing changed since the
        read began. Returns whether it was adopted."""
        if token.generation != self._generation:
            return False
        self._known = True
        self._iccid = iccid
        self._slot = slot
        return True

    # -- what may be said -----------------------------------------------------------------
    @property
    def known(self) -> bool:
        return self._known

    @property
    def iccid(self) -> str | None:
        """The ICCID to attribute anything to: None while the card is unknown (or absent)."""
        return self._iccid if self._known else None

    @property
    def slot(self) -> int | None:
        return self._slot if self._known else None

    @property
    def last_read(self) -> str | None:
        """The ICCID read back last, known or not any more (the card we believed was there:
        to be told it is gone, never to be charged or blamed)."""
        return self._iccid
