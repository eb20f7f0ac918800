"""The bank side of calls seen on a modem that simbank did not place: matched or booked.

A modem's :class:`~simbank.daemon.modem.call_watch.CallWatch` tells :meth:`OutboundCalls.started`
of every outgoing call it sees that the daemon's own ``call`` did not place (a PBX on the
modem's other port, a person with a terminal), once the SIM in the slot is known:

- with an open ``call/authorize`` on that modem (or one settled there a moment ago,
  :data:`MATCH_AFTER_S`), the call is that booking's: logged, nothing new booked;
- otherwise it is **unauthorized usage**, booked at once on the SIM read back in the slot:
  a ledger ``call`` row (so every quota counts it) with ``usage.txn`` =
  ``unauthorized:<token>``, the destination's keyed hash when the number parses, and
  ``[compliance] max_call_duration_s`` reserved until the call ends; an
  ``unauthorized_call`` event announces it (the number masked unless
  ``[compliance] show_sms_sender``, as ``incoming_call`` shows callers).

When the watch no longer lists it, :meth:`OutboundCalls.ended` completes the row with the talk
time measured (first seen active → seen gone) and feeds the detector and the quota
announcements as a ``call``'s end. A daemon stopped mid-call leaves the row uncompleted: it
counts in full (:mod:`simbank.bank.usage`). The open rows are listed in the ledger's settings
(:data:`OPEN_KEY`): after a restart, the same call still listed on the same modem and SIM is
adopted, not booked twice.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import structlog

from simbank.bank.numbers import parse_destination
from simbank.bank.usage import UsageKind
from simbank.daemon.modem.call_watch import Ended, WatchedCall
from simbank.daemon.redact import redact_text
from simbank.errors import LedgerError, SimbankError

if TYPE_CHECKING:
    from simbank.daemon.commands.pbx import PbxCommands
    from simbank.daemon.commands.traffic import TrafficCommands
    from simbank.daemon.runtime import BankRuntime

log = structlog.get_logger(__name__)

#: How unauthorized calls are marked on their ledger row (``usage.txn``).
TXN_PREFIX = "unauthorized:"
#: The settings document listing the unauthorized calls still open (survives a restart).
OPEN_KEY = "unauthorized_calls"
#: A call seen this long (clock seconds) after its authorization was settled is still its.
MATCH_AFTER_S = 15.0
#: An open entry left by an earlier run is forgotten this long after its reservation ended.
STALE_AFTER_S = 120.0


def unauthorized(transaction: str | None) -> bool:
    """Whether a ledger row's ``txn`` marks an unauthorized call."""
    return transaction is not None and transaction.startswith(TXN_PREFIX)


@dataclass(slots=True)
class OpenCall:
    """One unauthorized call booked and not completed yet (as kept in :data:`OPEN_KEY`)."""

    token: str
    row: int
    modem: str
    iccid: str
    booked_at: float
    reserved_s: int
    #: The destination's keyed hash (None: no number, or one that does not parse).
    destination: str | None = None


class OutboundCalls:
    """Matches or books the outgoing calls every modem's watch sees (see the module's doc)."""

    def __init__(self, runtime: BankRuntime, pbx: PbxCommands, traffic: TrafficCommands) -> None:
        self.gw = runtime
        self.pbx = pbx
        self.traffic = traffic
        #: The calls of this run: booked (an :class:`OpenCall`) or matched (a booking id).
        self._booked: dict[WatchedCall, OpenCall] = {}
        self._matched: dict[WatchedCall, str] = {}
        #: Open entries an earlier run left, not adopted yet.
        self._orphans: list[OpenCall] | None = None

    # -- CallHandler ----------------------------------------------------------------------------
    def started(self, modem_id: str, call: WatchedCall) -> None:
        auth = self.pbx.authorization_on(modem_id, settled_within_s=MATCH_AFTER_S)
        if auth is not None:
            self._matched[call] = auth.booking
            log.info("pbx_call_seen", modem=modem_id, iccid=call.iccid, booking=auth.booking)
            return
        assert call.iccid is not None  # the watch tells a call once its SIM is known
        gw = self.gw
        e164 = self._e164(call.number)
        digest = gw.ledger.hasher.hash(e164) if e164 is not None else None
        entry = self._adopt(modem_id, call.iccid, digest)
        if entry is not None:
            self._booked[call] = entry
            log.info("unauthorized_call_adopted", modem=modem_id, booking=entry.token)
            return
        now = gw.clock.now()
        reserved = gw.config.compliance.max_call_duration_s
        token = secrets.token_hex(8)
        row = gw.ledger.book(
            call.iccid,
            UsageKind.CALL,
            now,
            reserved_s=reserved,
            destination=e164,
            modem=modem_id,
            transaction=TXN_PREFIX + token,
        )
        entry = OpenCall(token, row, modem_id, call.iccid, now, reserved, digest)
        self._booked[call] = entry
        self._save()
        log.warning("unauthorized_call", modem=modem_id, iccid=call.iccid, booking=token)
        gw.board.event(
            "unauthorized_call",
            modem=modem_id,
            iccid=call.iccid,
            number=self.shown_number(call.number),
            destination=digest[:12] if digest else None,
            booking=token,
            reserved_s=reserved,
        )
        gw.publish_sim(call.iccid)

    def ended(self, modem_id: str, ended: Ended) -> None:
        call = ended.call
        booking = self._matched.pop(call, None)
        if booking is not None:
            log.info(
                "pbx_call_ended",
                modem=modem_id,
                booking=booking,
                outcome=ended.outcome,
                talk_s=ended.talk_s,
            )
            return
        entry = self._booked.pop(call, None)
        if entry is None:
            return
        gw = self.gw
        try:
            gw.ledger.complete(entry.row, gw.clock.now(), ended.outcome, ended.talk_s)
        except LedgerError as exc:  # completed already (by hand?): the row's result stands
            log.warning("unauthorized_call_not_completed", booking=entry.token, error=str(exc))
        self._save()
        log.info(
            "unauthorized_call_ended",
            modem=modem_id,
            iccid=entry.iccid,
            booking=entry.token,
            outcome=ended.outcome,
            talk_s=ended.talk_s,
        )
        if self.traffic.on_call is not None:
            self.traffic.on_call(modem_id, ended.outcome, ended.talk_s, None)
        self.traffic.call_ended(entry.iccid, ended.outcome, None, None, entry.destination or "")

    # -- helpers --------------------------------------------------------------------------------
    def shown_number(self, number: str | None) -> str:
        """The number as the event shows it (the privacy rule of ``incoming_call``)."""
        if number is None:
            return "unknown"
        if self.gw.config.compliance.show_sms_sender:
            return number
        return redact_text(number)

    def _e164(self, number: str | None) -> str | None:
        if not number:
            return None
        try:
            return parse_destination(number, self.gw.config.compliance).e164
        except (SimbankError, ValueError):
            return None  # a short code, a restricted or garbled number: kept without one

    def _adopt(self, modem_id: str, iccid: str, digest: str | None) -> OpenCall | None:
        """An entry an earlier run left open for this modem, SIM and destination."""
        if self._orphans is None:
            self._orphans = self._load()
        for entry in self._orphans:
            if (entry.modem, entry.iccid, entry.destination) == (modem_id, iccid, digest):
                self._orphans.remove(entry)
                return entry
        return None

    def _load(self) -> list[OpenCall]:
        stored = self.gw.ledger.get_setting(OPEN_KEY) or {}
        now = self.gw.clock.now()
        kept: list[OpenCall] = []
        for raw in stored.get("open") or []:
            try:
                entry = OpenCall(**raw)
            except TypeError:
                log.warning("unauthorized_call_entry_unreadable", entry=str(raw)[:200])
                continue
            if entry.booked_at + entry.reserved_s + STALE_AFTER_S < now:
                continue  # uncompleted: it counts in full, as any booking left open
            rows = self.gw.ledger.bookings_for_transaction(TXN_PREFIX + entry.token)
            if rows and not rows[0].completed:
                kept.append(entry)
        return kept

    def _save(self) -> None:
        if self._orphans is None:
            self._orphans = self._load()
        entries: list[dict[str, Any]] = [asdict(e) for e in self._booked.values()]
        entries += [asdict(e) for e in self._orphans]
        self.gw.ledger.put_setting(OPEN_KEY, {"open": entries}, self.gw.clock.now())
