"""The bank side of calls seen on a modem that simbank did not place: matched or booked.

A modem's :class:`~simbank.daemon.modem.call_watch.CallWatch` tells :meth:`OutboundCalls.started`
of every outgoing call it sees that the daemon's own ``call`` did not place (a PBX on the
modem's other port, a person with a terminal), once the SIM in the slot is known:

- a call to the destination an open ``call/authorize`` on that modem booked (or one settled
  there a moment ago, :data:`MATCH_AFTER_S`), or one whose number the modem does not list, is
  that booking's — **one call per booking**: logged, nothing new booked;
- anything else is **unauthorized usage** (another number, a second call on the same
  booking, a call with no booking), booked at once on the SIM read back in the slot:
  a ledger ``call`` row (so every quota counts it) with ``usage.txn`` =
  ``unauthorized:<token>``, the destination's keyed hash when the number parses, and
  ``[compliance] max_call_duration_s`` reserved until the call ends; an
  ``unauthorized_call`` event announces it (the number masked unless
  ``[compliance] show_sms_sender``, as ``incoming_call`` shows callers).

When the watch no longer lists it, :meth:`OutboundCalls.ended` completes the row with the talk
time measured (first seen active → seen gone) and feeds the detector and the quota
announcements as a ``call``'s end. A call that ended before its SIM was ever known
(:meth:`OutboundCalls.unattributed`) is booked then, completed, on the SIM the inventory last
saw in the active slot (announced all the same; with no such SIM, only announced).

A daemon stopped mid-call leaves the row uncompleted: it counts in full
(:mod:`simbank.bank.usage`). The open rows are listed in the ledger's settings
(:data:`OPEN_KEY`), written in the booking's own commit. After a restart, an entry is taken
over (not booked twice) only by a call listed in that modem's **first** ``AT+CLCC`` answer of
the new run, on the same SIM and destination; entries no call took over then are dropped from
the list and stay uncompleted (they count in full): a later call, even to the same number, is
a new call.

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
from simbank.errors import LedgerError, SimbankError, StorageUnavailable

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
        #: Each modem's authorizations a call was matched to (one call per booking); pruned
        #: to those a call could still be matched to.
        self._used: dict[str, set[str]] = {}
        #: Open entries an earlier run left, not adopted yet.
        self._orphans: list[OpenCall] | None = None
        #: Unauthorized calls seen while the ledger could not book: (started, number).
        self._unbooked: dict[WatchedCall, tuple[float, str | None]] = {}

    # -- CallHandler ----------------------------------------------------------------------------
    def started(self, modem_id: str, call: WatchedCall) -> None:
        assert call.iccid is not None  # the watch tells a call once its SIM is known
        gw = self.gw
        e164 = self._e164(call.number)
        digest = gw.ledger.hasher.hash(e164) if e164 is not None else None
        booking = self._match(modem_id, call, digest)
        if booking is not None:
            self._matched[call] = booking
            log.info("pbx_call_seen", modem=modem_id, iccid=call.iccid, booking=booking)
            return
        entry = self._adopt(modem_id, call, digest)
        if entry is not None:
            self._booked[call] = entry
            log.info("unauthorized_call_adopted", modem=modem_id, booking=entry.token)
            return
        now = gw.clock.now()
        reserved = gw.config.compliance.max_call_duration_s
        token = secrets.token_hex(8)
        entry = OpenCall(token, 0, modem_id, call.iccid, now, reserved, digest)

        def listed(row: int) -> tuple[str, dict[str, Any]]:
            # In the booking's own commit: a daemon that dies right after the booking still
            # finds it open after its restart.
            entry.row = row
            return OPEN_KEY, self._open_list(entry)

        try:
            gw.ledger.book(
                call.iccid,
                UsageKind.CALL,
                now,
                reserved_s=reserved,
                destination=e164,
                modem=modem_id,
                transaction=TXN_PREFIX + token,
                setting=listed,
            )
        except StorageUnavailable as exc:
            # The ledger cannot store it now (the gateway is degraded): announced at once all
            # the same, and booked with its talk time when it ends, if the storage is back.
            log.warning("unauthorized_call_not_booked_yet", modem=modem_id, error=str(exc))
            self._unbooked[call] = (now, e164)
            self._announce(
                modem_id, call.iccid, call.number, digest, token=None, reserved_s=reserved
            )
            return
        self._booked[call] = entry
        self._announce(modem_id, call.iccid, call.number, digest, token=token, reserved_s=reserved)

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
        late = self._unbooked.pop(call, None)
        if late is not None:
            self._book_late(modem_id, ended, *late)
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
        self._call_over(modem_id, entry.iccid, ended, entry.destination)

    def unattributed(self, modem_id: str, ended: Ended) -> None:
        """An outgoing call (not the daemon's) that ended before the SIM in the slot was ever
        known: booked now, completed, on the SIM the inventory last saw in the modem's active
        slot, and announced; with no such SIM, only announced (``iccid`` and ``booking``
        null) — never dropped unseen."""
        call = ended.call
        gw = self.gw
        sup = gw.supervisors.get(modem_id)
        slot = sup.active_slot if sup is not None else None
        iccid = gw.slots.get((modem_id, slot)) if slot is not None else None
        e164 = self._e164(call.number)
        digest = gw.ledger.hasher.hash(e164) if e164 is not None else None
        if iccid is None:
            log.warning("unauthorized_call_unattributed", modem=modem_id, talk_s=ended.talk_s)
            self._announce(modem_id, None, call.number, digest, token=None, reserved_s=ended.talk_s)
            return
        now = gw.clock.now()
        token = self._book_ended(modem_id, iccid, ended, e164, booked_at=now, completed_at=now)
        log.warning("unauthorized_call_on_last_known_sim", modem=modem_id, slot=slot, iccid=iccid)
        self._announce(modem_id, iccid, call.number, digest, token=token, reserved_s=ended.talk_s)
        self._call_over(modem_id, iccid, ended, digest)

    def _book_late(self, modem_id: str, ended: Ended, started_at: float, e164: str | None) -> None:
        """An unauthorized call the ledger could not book when it started: booked and settled
        now with its measured talk time (or, the storage still failing, logged as lost)."""
        call, gw = ended.call, self.gw
        assert call.iccid is not None
        try:
            token = self._book_ended(
                modem_id,
                call.iccid,
                ended,
                e164,
                booked_at=started_at,
                completed_at=gw.clock.now(),
            )
        except StorageUnavailable as exc:
            log.exception(
                "unauthorized_call_usage_lost",
                modem=modem_id,
                iccid=call.iccid,
                talk_s=ended.talk_s,
                error=str(exc),
            )
            return
        log.warning("unauthorized_call_booked_late", modem=modem_id, booking=token)
        digest = gw.ledger.hasher.hash(e164) if e164 is not None else None
        self._call_over(modem_id, call.iccid, ended, digest)

    # -- helpers --------------------------------------------------------------------------------
    def _book_ended(
        self,
        modem_id: str,
        iccid: str,
        ended: Ended,
        e164: str | None,
        *,
        booked_at: float,
        completed_at: float,
    ) -> str:
        """An unauthorized call that is over, booked and settled with its measured talk time
        in one go; the token of its booking."""
        token = secrets.token_hex(8)
        ledger = self.gw.ledger
        row = ledger.book(
            iccid,
            UsageKind.CALL,
            booked_at,
            reserved_s=ended.talk_s,
            destination=e164,
            modem=modem_id,
            transaction=TXN_PREFIX + token,
        )
        ledger.complete(row, completed_at, ended.outcome, ended.talk_s)
        return token

    def shown_number(self, number: str | None) -> str:
        """The number as the event shows it (the privacy rule of ``incoming_call``)."""
        if number is None:
            return "unknown"
        if self.gw.config.compliance.show_sms_sender:
            return number
        return redact_text(number)

    def _announce(
        self,
        modem_id: str,
        iccid: str | None,
        number: str | None,
        digest: str | None,
        *,
        token: str | None,
        reserved_s: int,
    ) -> None:
        log.warning("unauthorized_call", modem=modem_id, iccid=iccid, booking=token)
        self.gw.board.event(
            "unauthorized_call",
            modem=modem_id,
            iccid=iccid,
            number=self.shown_number(number),
            destination=digest[:12] if digest else None,
            booking=token,
            reserved_s=reserved_s,
        )
        if iccid is not None:
            self.gw.publish_sim(iccid)

    def _call_over(self, modem_id: str, iccid: str, ended: Ended, digest: str | None) -> None:
        """A booked call's end, as a ``call``'s: the metrics, the detector, the quotas."""
        if self.traffic.on_call is not None:
            self.traffic.on_call(modem_id, ended.outcome, ended.talk_s, None)
        self.traffic.call_ended(iccid, ended.outcome, None, None, digest or "")

    def _match(self, modem_id: str, call: WatchedCall, digest: str | None) -> str | None:
        """The authorization on the modem this call is (see the module's doc), else None."""
        candidates = self.pbx.authorizations_on(modem_id, settled_within_s=MATCH_AFTER_S)
        used = self._used.setdefault(modem_id, set())
        used &= {a.booking for a in candidates}  # those no call can match any more: dropped
        for auth in candidates:
            if auth.booking in used:
                continue
            if call.number is None or auth.destination is None or auth.destination == digest:
                used.add(auth.booking)
                return auth.booking
        return None

    def _e164(self, number: str | None) -> str | None:
        if not number:
            return None
        try:
            return parse_destination(number, self.gw.config.compliance).e164
        except (SimbankError, ValueError):
            return None  # a short code, a restricted or garbled number: kept without one

    def _first_answer(self, modem_id: str, call: WatchedCall) -> bool:
        """Whether ``call`` is told from the modem's first ``AT+CLCC`` answer of this run and
        no URC spoke of it before: only such a call may be one an earlier run booked. (A URC
        tells a change: a call it reports first, even before that answer, is taken as new.)"""
        sup = self.gw.supervisors.get(modem_id)
        return sup is not None and sup.call_watch.polls == 1 and call.reported_at == 0

    def _adopt(self, modem_id: str, call: WatchedCall, digest: str | None) -> OpenCall | None:
        """An entry an earlier run left open for this modem, SIM and destination, when the
        call was in the modem's first answer (see the module's doc)."""
        orphans = self._pruned_orphans()
        if not self._first_answer(modem_id, call):
            return None
        for entry in orphans:
            if (entry.modem, entry.iccid, entry.destination) == (modem_id, call.iccid, digest):
                orphans.remove(entry)
                return entry
        return None

    def _pruned_orphans(self) -> list[OpenCall]:
        """The entries an earlier run left that a call may still take over: those of modems
        whose first answer has not passed yet (an answer after the first one only lists calls
        of this run)."""
        if self._orphans is None:
            self._orphans = self._load()
        sups = self.gw.supervisors
        kept = [e for e in self._orphans if e.modem in sups and sups[e.modem].call_watch.polls < 2]
        for entry in self._orphans:
            if entry not in kept:
                log.info("unauthorized_call_left_open", booking=entry.token, modem=entry.modem)
        self._orphans = kept
        return kept

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

    def _open_list(self, new: OpenCall | None = None) -> dict[str, Any]:
        entries: list[dict[str, Any]] = [asdict(e) for e in self._booked.values()]
        entries += [asdict(e) for e in self._pruned_orphans()]
        if new is not None:
            entries.append(asdict(new))
        return {"open": entries}

    def _save(self) -> None:
        self.gw.ledger.put_setting(OPEN_KEY, self._open_list(), self.gw.clock.now())
