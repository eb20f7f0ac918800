"""Calls a PBX dials: ``call/authorize`` and ``call/complete``.

A call centre's PBX (Asterisk with chan_quectel, FreeSWITCH, a dialer) places the call on the
modem's own audio/AT port; simbank is asked first. ``call/authorize`` runs the checks of
``call`` (:meth:`.traffic.TrafficCommands.check_call`, then the rotation plan under the modem's
lock, switching slots first when needed), books the call in the ledger with
``max_duration_s`` reserved (``[compliance] max_call_duration_s`` when the request names none), and answers the modem, its PBX device name, the ICCID and an
opaque booking id. The modem's lock stays taken until the booking is settled, so nothing
switches that modem's SIM under the PBX's call (a request that needs the modem is refused
``busy`` at once; the serving guard and the slot inventory skip a locked modem).

``call/complete`` settles the booking with the real duration and outcome (the unused part of
the reservation is given back) and feeds the block detector as a ``call`` would; repeating it
answers the first result. A booking never completed is settled at ``expires_at``
(``booked + max_duration_s + GRACE_S``) as used: the whole reservation, outcome ``unknown``.

Durability: the booking is a ledger row (``usage.txn`` = ``authorize:<booking id>``)
committed before the answer; the open authorizations are also listed in the ledger's settings
(:data:`OPEN_KEY`), so after a restart they hold their modems again and still expire or
complete. A row never completed counts in full (:mod:`simbank.bank.usage`) whatever happens.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from simbank.bank.usage import UsageKind, UsageRecord
from simbank.contract import AuthorizeRequest, CompleteRequest, Request
from simbank.daemon.commands.access import ModemAccess
from simbank.daemon.commands.traffic import TrafficCommands
from simbank.daemon.runtime import BankRuntime
from simbank.errors import LedgerError, Refused, StorageUnavailable

log = structlog.get_logger(__name__)

#: Seconds after ``max_duration_s`` an authorization waits for its ``call/complete``.
GRACE_S = 120.0
#: How bookings made by ``call/authorize`` are marked on their ledger row (``usage.txn``).
TXN_PREFIX = "authorize:"
#: The settings document listing the open authorizations (survives a restart).
OPEN_KEY = "pbx_authorizations"
#: Settled results kept in memory to answer a repeated ``call/complete`` exactly (older ones
#: are answered from the ledger row, without the cause).
SETTLED_KEPT = 4096
#: The expiry loop looks again at least this often (clock seconds).
IDLE_WAIT_S = 60.0


@dataclass(slots=True)
class Authorization:
    """One open authorization (as kept in :data:`OPEN_KEY`)."""

    booking: str
    row: int
    modem: str
    iccid: str
    reserved_s: int
    booked_at: float
    expires_at: float
    #: The destination's keyed hash (block evidence names it).
    destination: str | None = None


def _booked_at(auth: Authorization) -> float:
    return auth.booked_at


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


class PbxCommands:
    """``call/authorize``, ``call/complete`` and the expiry of open authorizations."""

    def __init__(self, runtime: BankRuntime, access: ModemAccess, traffic: TrafficCommands) -> None:
        self.gw = runtime
        self.access = access
        self.traffic = traffic
        self.grace_s = GRACE_S
        self.open: dict[str, Authorization] = {}
        #: Modems whose lock an open authorization holds.
        self._held: set[str] = set()
        self._settled: OrderedDict[str, dict[str, Any]] = OrderedDict()
        #: Each modem's last settled authorization and when (clock): a call the watch sees
        #: just after its ``call/complete`` is still that booking's.
        self._last_settled: dict[str, tuple[Authorization, float]] = {}
        self._changed = asyncio.Event()
        self._restored = False

    # -- the commands -----------------------------------------------------------------------

    async def authorize(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, AuthorizeRequest)
        gw = self.gw
        max_duration_s = req.max_duration_s or gw.config.compliance.max_call_duration_s
        checked = self.traffic.check_call(req.number, max_duration_s)
        sup, iccid = await self.access.acquire(checked.action, req.modem)
        auth: Authorization | None = None
        try:
            booking = secrets.token_hex(8)  # never starts with "-": a safe argument
            now = gw.clock.now()
            row = gw.ledger.book(
                iccid,
                UsageKind.CALL,
                now,
                reserved_s=max_duration_s,
                destination=checked.destination.e164,
                modem=sup.cfg.id,
                transaction=TXN_PREFIX + booking,
            )
            auth = Authorization(
                booking,
                row,
                sup.cfg.id,
                iccid,
                max_duration_s,
                now,
                now + max_duration_s + self.grace_s,
                checked.digest,
            )
            self._hold(auth, held=True)
            self._save()
        finally:
            if auth is None:
                sup.lock.release()
        gw.publish_sim(iccid)
        log.info("call_authorized", modem=auth.modem, iccid=iccid, booking=booking)
        return {
            "modem": auth.modem,
            "device": sup.cfg.device,
            "iccid": iccid,
            "booking": booking,
            "max_duration_s": auth.reserved_s,
            "expires_at": iso(auth.expires_at),
        }

    async def complete(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, CompleteRequest)
        settled = self._settled.get(req.booking)
        if settled is None:
            settled = self._settle_request(req)
        if settled.get("expired"):
            raise Refused(
                "unknown_booking",
                f"booking {req.booking} expired at {settled['expires_at']} and was settled as "
                "used (its whole reservation)",
                expired=True,
                expires_at=settled["expires_at"],
            )
        return {k: v for k, v in settled.items() if k not in {"expired", "expires_at"}}

    def _settle_request(self, req: CompleteRequest) -> dict[str, Any]:
        auth = self.open.get(req.booking)
        if auth is not None:
            return self._settle(auth, req.outcome, req.duration_s, req.cause)
        rows = self.gw.ledger.bookings_for_transaction(TXN_PREFIX + req.booking)
        if not rows:
            raise Refused("unknown_booking", f"no booking {req.booking} on this gateway")
        row = rows[0]
        if row.completed:  # settled in an earlier life of the daemon
            return self._from_row(req.booking, row)
        # Booked, then the daemon died before it listed the authorization: settle it now.
        auth = Authorization(
            req.booking,
            row.id,
            row.modem or "",
            row.iccid,
            row.reserved_s,
            row.booked_at,
            row.booked_at + row.reserved_s + self.grace_s,
            row.destination,
        )
        return self._settle(auth, req.outcome, req.duration_s, req.cause)

    def _from_row(self, booking: str, row: UsageRecord) -> dict[str, Any]:
        """The first result, as the ledger row keeps it (the cause is not kept there). An
        expiry settles at or after ``booked_at + reserved_s + grace``; a real complete (which
        may report ``unknown`` and the whole duration too) came before that."""
        expires_at = row.booked_at + row.reserved_s + self.grace_s
        expired = (
            row.outcome == "unknown"
            and row.duration_s == row.reserved_s
            and row.completed_at is not None
            and row.completed_at >= expires_at
        )
        return {
            "booking": booking,
            "modem": row.modem,
            "iccid": row.iccid,
            "outcome": row.outcome,
            "duration_s": row.duration_s,
            "cause": None,
            "expired": expired,
            "expires_at": iso(expires_at),
        }

    # -- settling ---------------------------------------------------------------------------

    def _settle(
        self,
        auth: Authorization,
        outcome: str,
        duration_s: int,
        cause: int | None,
        *,
        expired: bool = False,
    ) -> dict[str, Any]:
        """Complete the ledger row, free the modem, feed the detector; the result is kept.
        The duration is charged as the PBX reports it, even beyond the reservation: the
        quotas count what the SIM really used."""
        gw = self.gw
        try:
            gw.ledger.complete(auth.row, gw.clock.now(), outcome, duration_s)
        except StorageUnavailable:
            # The storage failed (the gateway is degraded): nothing is settled, the
            # authorization stays open, so `complete` can be sent again (or it expires).
            raise
        except LedgerError:
            # Completed already: the daemon died between completing the row and rewriting
            # the open list. The row's result stands; the authorization is over.
            self._release(auth)
            self._save()
            rows = gw.ledger.bookings_for_transaction(TXN_PREFIX + auth.booking)
            if not rows:
                raise
            log.warning("authorization_already_settled", booking=auth.booking)
            return self._from_row(auth.booking, rows[0])
        self._release(auth)
        self._save()
        if self.traffic.on_call is not None and auth.modem:
            self.traffic.on_call(auth.modem, outcome, duration_s, cause)
        self.traffic.call_ended(auth.iccid, outcome, cause, None, auth.destination or "")
        result: dict[str, Any] = {
            "booking": auth.booking,
            "modem": auth.modem,
            "iccid": auth.iccid,
            "outcome": outcome,
            "duration_s": duration_s,
            "cause": cause,
            "expired": expired,
            "expires_at": iso(auth.expires_at),
        }
        self._settled[auth.booking] = result
        while len(self._settled) > SETTLED_KEPT:
            self._settled.popitem(last=False)
        log.info(
            "authorization_expired" if expired else "call_completed",
            booking=auth.booking,
            modem=auth.modem,
            iccid=auth.iccid,
            outcome=outcome,
            duration_s=duration_s,
        )
        return result

    def expire_due(self) -> int:
        """Settle every authorization past its expiry as used; how many were."""
        now = self.gw.clock.now()
        due = [a for a in self.open.values() if a.expires_at <= now]
        for auth in due:
            try:
                self._settle(auth, "unknown", auth.reserved_s, None, expired=True)
            except Exception:  # one bad entry must not stop the others, nor the daemon
                log.exception("authorization_expiry_failed", booking=auth.booking)
                self._release(auth)
        return len(due)

    # -- holding the modem ------------------------------------------------------------------

    def _hold(self, auth: Authorization, *, held: bool) -> None:
        """List ``auth`` as open; ``held``: its modem's lock was taken for it and stays so."""
        self.open[auth.booking] = auth
        if held:
            self._held.add(auth.modem)
            self.access.holds[auth.modem] = (
                f"an authorized PBX call (booking {auth.booking}) until {iso(auth.expires_at)}"
            )
        self._changed.set()

    def authorizations_on(self, modem_id: str, *, settled_within_s: float) -> list[Authorization]:
        """The bookings a call seen on ``modem_id`` may be (:mod:`simbank.daemon.outbound_calls`):
        the open authorizations there, oldest first, then the one settled there at most
        ``settled_within_s`` ago (clock seconds), if any."""
        mine = sorted((a for a in self.open.values() if a.modem == modem_id), key=_booked_at)
        last = self._last_settled.get(modem_id)
        if last is not None and self.gw.clock.now() - last[1] <= settled_within_s:
            mine.append(last[0])
        return mine

    def _release(self, auth: Authorization) -> None:
        if self.open.pop(auth.booking, None) is not None and auth.modem:
            self._last_settled[auth.modem] = (auth, self.gw.clock.now())
        if auth.modem in self._held and not any(a.modem == auth.modem for a in self.open.values()):
            self._held.discard(auth.modem)
            self.access.holds.pop(auth.modem, None)
            sup = self.gw.supervisors.get(auth.modem)
            if sup is not None and sup.lock.locked():
                sup.lock.release()
        self._changed.set()

    def _save(self) -> None:
        self.gw.ledger.put_setting(
            OPEN_KEY,
            {"open": [asdict(a) for a in self.open.values()]},
            self.gw.clock.now(),
        )

    async def restore(self) -> None:
        """The authorizations a previous run left open hold their modems again (taken
        before the modems' tasks can switch anything)."""
        if self._restored:
            return
        self._restored = True
        stored = self.gw.ledger.get_setting(OPEN_KEY) or {}
        dropped = 0
        for entry in stored.get("open") or []:
            try:
                auth = Authorization(**entry)
            except TypeError:
                log.warning("authorization_unreadable", entry=str(entry)[:200])
                continue
            rows = self.gw.ledger.bookings_for_transaction(TXN_PREFIX + auth.booking)
            if rows and rows[0].completed:  # settled just before the daemon died
                dropped += 1
                log.info("authorization_already_settled", booking=auth.booking)
                continue
            sup = self.gw.supervisors.get(auth.modem)
            held = sup is not None and auth.modem not in self._held and not sup.lock.locked()
            if sup is not None and held:
                await sup.lock.acquire()  # free (checked just now): taken at once
            self._hold(auth, held=held or auth.modem in self._held)
            log.info("authorization_restored", booking=auth.booking, modem=auth.modem)
        if dropped:
            self._save()

    # -- the expiry loop --------------------------------------------------------------------

    async def run(self) -> None:
        """Restore what a previous run left open, then settle each authorization at its
        expiry (the gateway's clock)."""
        await self.restore()
        clock = self.gw.clock
        while True:
            self.expire_due()
            self._changed.clear()
            now = clock.now()
            wait = min((a.expires_at - now for a in self.open.values()), default=IDLE_WAIT_S)
            sleeper = asyncio.create_task(clock.sleep(max(0.0, min(wait, IDLE_WAIT_S))))
            changed = asyncio.create_task(self._changed.wait())
            try:
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, changed):
                    task.cancel()
                await asyncio.gather(sleeper, changed, return_exceptions=True)
