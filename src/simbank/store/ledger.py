"""The durable ledger: one SQLite file (WAL, ``synchronous=FULL``) in the state directory.

Book before act: :meth:`Ledger.book` returns only once the booking is committed to disk, so
a crash, a ``kill -9`` or a power cut after the AT command was sent still leaves the usage
on record; a booking never completed counts as used (see :mod:`simbank.bank.usage`). Usage
is keyed by ICCID, so it follows a SIM moved to another slot or modem. Destinations, and the
senders of inbound SMS that are phone numbers, are stored only as keyed hashes
(:class:`~simbank.store.secret.DestinationHasher`).

Calls are synchronous and take a lock, so one ``Ledger`` may be shared with worker threads
(``asyncio.to_thread``); several ``Ledger`` objects (or processes) may open one file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from simbank.bank.usage import UsageKind, UsageRecord
from simbank.errors import LedgerError
from simbank.store.balances import BalanceLedger, BalanceRecord
from simbank.store.core import dump_json
from simbank.store.deliveries import DeliveryLedger, MessageDelivery
from simbank.store.inbound_calls import InboundCallLedger
from simbank.store.inbox import InboxLedger, PartStored
from simbank.store.retention import FoldResult, RetentionLedger, UsageTotals
from simbank.store.schema import AuditEntry, Evidence, InboundSms, SimRecord, connect, migrate
from simbank.store.secret import (
    DestinationHasher,
    ensure_private_dir,
    load_or_create_secret,
)

__all__ = [
    "LEDGER_FILE",
    "AuditEntry",
    "BalanceRecord",
    "Evidence",
    "FoldResult",
    "InboundSms",
    "Ledger",
    "MessageDelivery",
    "PartStored",
    "SimRecord",
    "UsageTotals",
]

LEDGER_FILE = "ledger.sqlite3"
RESPONSE_TTL_S = 7 * 86400.0


class Ledger(InboxLedger, DeliveryLedger, BalanceLedger, InboundCallLedger, RetentionLedger):
    """The SQLite ledger; open with :meth:`open`, finish with :meth:`close`. Usage, SIM states,
    evidence, audit, settings and request de-duplication are here; the inbox, sent messages'
    delivery reports, balance checks and the retention fold are the parts it inherits.

    Rows older than the retention horizon are folded into daily totals
    (:mod:`simbank.store.retention`): :meth:`calls_booked` adds them; the row readers
    (:meth:`usage_records`, :meth:`destination_calls`, :meth:`evidence`, :meth:`audit_trail`)
    see the rows still kept, which every quota window and the 30 days of ``sim/report`` are."""

    @classmethod
    def open(cls, state_dir: Path, *, durable: bool = True) -> Ledger:
        """Open (creating, 0700/0600, and migrating as needed) the ledger in ``state_dir``.

        ``durable=False`` (``synchronous=NORMAL``) survives a process crash but not a power
        cut; it exists for tests and benchmarks only.
        """
        ensure_private_dir(state_dir)
        hasher = DestinationHasher(load_or_create_secret(state_dir))
        path = state_dir / LEDGER_FILE
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise LedgerError(f"{path}: {exc.strerror}") from exc
        conn = connect(path, durable=durable)
        try:
            migrate(conn)
        except LedgerError:
            conn.close()
            raise
        ledger = cls(conn, hasher, path)
        try:
            ledger._protect_inbound_senders()
        except LedgerError:
            conn.close()
            raise
        return ledger

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- usage ------------------------------------------------------------------------------

    def book(
        self,
        iccid: str,
        kind: UsageKind,
        now: float,
        *,
        reserved_s: int = 0,
        destination: str | None = None,
        modem: str | None = None,
        transaction: str | None = None,
        setting: Callable[[int], tuple[str, Mapping[str, object]]] | None = None,
    ) -> int:
        """Record intended usage, committed durably before returning; returns the booking id.

        ``destination`` is the number in clear: only its keyed hash is stored. ``setting``:
        given the new booking id, a (key, document) stored as :meth:`put_setting` does, in
        the same commit (a list of open bookings that must never miss one that is booked).
        """
        digest = None if destination is None else self.hasher.hash(destination)
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO usage (iccid, kind, booked_at, reserved_s, destination, modem, txn)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (iccid, UsageKind(kind).value, now, reserved_s, digest, modem, transaction),
            )
            booking = cursor.lastrowid
            assert booking is not None
            if setting is not None:
                key, value = setting(booking)
                _put_setting(conn, key, value, now)
        assert booking is not None
        return booking

    def complete(self, booking_id: int, now: float, outcome: str, duration_s: int = 0) -> None:
        """Record a booking's outcome (once; completing it again is an error)."""
        with self._write() as conn:
            found = conn.execute(
                "SELECT completed_at FROM usage WHERE id = ?", (booking_id,)
            ).fetchone()
            if found is None:
                raise LedgerError(f"no booking {booking_id}")
            if found[0] is not None:
                raise LedgerError(f"booking {booking_id} is already completed")
            conn.execute(
                "UPDATE usage SET completed_at = ?, outcome = ?, duration_s = ? WHERE id = ?",
                (now, outcome, duration_s, booking_id),
            )

    def usage_records(self, iccid: str, since: float) -> list[UsageRecord]:
        """The SIM's records booked at or after ``since`` (including any in the future), in
        booking-time order (served by the ``(iccid, booked_at)`` index). Rows before the
        retention fold's cutoff are no longer rows (no quota window reaches that far; see
        :meth:`usage_totals` for the folded days)."""
        rows = self._read(
            "SELECT id, iccid, kind, booked_at, reserved_s, completed_at, outcome, duration_s,"
            " destination, modem, txn FROM usage WHERE iccid = ? AND booked_at >= ?"
            " ORDER BY booked_at, id",
            (iccid, since),
        )
        return [UsageRecord(r[0], r[1], UsageKind(r[2]), *r[3:]) for r in rows]

    def calls_booked(self, iccid: str, since: float) -> int:
        """Calls booked for this SIM after ``since``, folded ones included: exact for ``-inf``
        and for the SIM's last balance check, however old (see :meth:`folded_calls`)."""
        rows = self._read(
            "SELECT (SELECT COUNT(*) FROM usage WHERE iccid = ? AND booked_at > ?"
            " AND kind = 'call') + (SELECT COALESCE(SUM(count), 0) FROM usage_daily"
            " WHERE iccid = ? AND kind = 'call' AND last_at > ?)",
            (iccid, since, iccid, since),
        )
        return int(rows[0][0])

    def destination_calls(self, destination_hash: str, since: float) -> int:
        """Calls booked to this destination hash since ``since``, by any SIM of the gateway
        (the daily cap asks from today's start: folded rows never matter)."""
        rows = self._read(
            "SELECT COUNT(*) FROM usage WHERE destination = ? AND booked_at >= ? AND kind = 'call'",
            (destination_hash, since),
        )
        return int(rows[0][0])

    # -- SIM states, evidence, audit --------------------------------------------------------

    def set_sim_state(
        self, iccid: str, state: str, now: float, reason: str | None = None, note: str | None = None
    ) -> None:
        """Set a SIM's state; ``since`` moves only when the state changes."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sim_state (iccid, state, reason, since, note) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (iccid) DO UPDATE SET reason = excluded.reason,"
                " note = excluded.note, since = CASE WHEN sim_state.state = excluded.state"
                " THEN sim_state.since ELSE excluded.since END, state = excluded.state",
                (iccid, state, reason, now, note),
            )

    def record_verdict(
        self,
        iccid: str,
        state: str,
        now: float,
        reason: str,
        evidence: Sequence[tuple[float, str, dict[str, object]]],
    ) -> None:
        """A detector verdict: the SIM's new state and all its evidence in ONE durable commit
        (one fsync, not one per observation: the verdict reaches MQTT that much sooner)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sim_state (iccid, state, reason, since, note) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (iccid) DO UPDATE SET reason = excluded.reason,"
                " note = excluded.note, since = CASE WHEN sim_state.state = excluded.state"
                " THEN sim_state.since ELSE excluded.since END, state = excluded.state",
                (iccid, state, reason, now, None),
            )
            conn.executemany(
                "INSERT INTO evidence (iccid, at, kind, detail) VALUES (?, ?, ?, ?)",
                [(iccid, at, kind, dump_json(detail)) for at, kind, detail in evidence],
            )

    def sim_states(self) -> dict[str, SimRecord]:
        """Every SIM's last known state."""
        rows = self._read("SELECT iccid, state, reason, since, note FROM sim_state ORDER BY iccid")
        return {r[0]: SimRecord(state=r[1], reason=r[2], since=r[3], note=r[4]) for r in rows}

    def add_evidence(self, iccid: str, now: float, kind: str, detail: dict[str, object]) -> None:
        """Record one piece of block evidence."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO evidence (iccid, at, kind, detail) VALUES (?, ?, ?, ?)",
                (iccid, now, kind, dump_json(detail)),
            )

    def evidence(self, iccid: str, since: float | None = None) -> list[Evidence]:
        """The SIM's block evidence, oldest first (older than the retention horizon only while
        the SIM is in quarantine; the rest is counted in ``event_daily``)."""
        rows = self._read(
            "SELECT id, iccid, at, kind, detail FROM evidence WHERE iccid = ? AND at >= ?"
            " ORDER BY at, id",
            (iccid, _floor(since)),
        )
        return [Evidence(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def audit(self, now: float, actor: str, action: str, detail: dict[str, object]) -> None:
        """Append to the audit trail (rotations, operator commands)."""
        iccid = detail.get("iccid")
        with self._write() as conn:
            conn.execute(
                "INSERT INTO audit (at, actor, action, iccid, detail) VALUES (?, ?, ?, ?, ?)",
                (now, actor, action, iccid if isinstance(iccid, str) else None, dump_json(detail)),
            )

    def audit_trail(self, iccid: str | None = None, since: float | None = None) -> list[AuditEntry]:
        """The audit trail, oldest first, optionally for one SIM (within the retention
        horizon, but all of a quarantined SIM's; the rest is counted in ``event_daily``)."""
        sql = "SELECT id, at, actor, action, iccid, detail FROM audit WHERE at >= ?"
        params: tuple[Any, ...] = (_floor(since),)
        if iccid is not None:
            sql += " AND iccid = ?"
            params += (iccid,)
        rows = self._read(sql + " ORDER BY at, id", params)
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    # -- settings that must survive a restart (circuit breaker, traffic pause) ---------------

    def put_setting(self, key: str, value: Mapping[str, object], now: float) -> None:
        """Store a small JSON document under ``key`` (replacing the previous one)."""
        with self._write() as conn:
            _put_setting(conn, key, value, now)

    def get_setting(self, key: str) -> dict[str, Any] | None:
        """The document stored under ``key``, if any."""
        rows = self._read("SELECT value FROM settings WHERE key = ?", (key,))
        return dict(json.loads(rows[0][0])) if rows else None

    # -- request de-duplication --------------------------------------------------------------

    def bookings_for_transaction(self, transaction: str) -> list[UsageRecord]:
        """Every booking made for a request's ``transaction`` (as the handlers record it)."""
        rows = self._read(
            "SELECT id, iccid, kind, booked_at, reserved_s, completed_at, outcome, duration_s,"
            " destination, modem, txn FROM usage WHERE txn = ? ORDER BY id",
            (transaction,),
        )
        return [UsageRecord(r[0], r[1], UsageKind(r[2]), *r[3:]) for r in rows]

    def start_transaction(self, command: str, transaction: str, now: float) -> None:
        """Durably record that (command, transaction) is about to be carried out.

        Committed before the command acts; :meth:`remember_response` removes it in the commit
        that stores the answer. One still there after a restart marks a request a crash
        interrupted (:meth:`transaction_started`): it is answered, never run again.
        """
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO transactions (command, txn, started_at) VALUES (?, ?, ?)",
                (command, transaction, now),
            )

    def transaction_started(self, command: str, transaction: str) -> float | None:
        """When (command, transaction) started, if it started and has no stored answer."""
        rows = self._read(
            "SELECT started_at FROM transactions WHERE command = ? AND txn = ?",
            (command, transaction),
        )
        return float(rows[0][0]) if rows else None

    def remember_response(
        self, command: str, transaction: str, response: bytes, now: float
    ) -> None:
        """Keep the first response to (command, transaction) and clear its started mark, in
        one commit; forget responses (and marks) older than a week."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO responses (command, txn, response, at) VALUES (?, ?, ?, ?)",
                (command, transaction, response, now),
            )
            conn.execute(
                "DELETE FROM transactions WHERE command = ? AND txn = ?", (command, transaction)
            )
            conn.execute("DELETE FROM responses WHERE at < ?", (now - RESPONSE_TTL_S,))
            conn.execute("DELETE FROM transactions WHERE started_at < ?", (now - RESPONSE_TTL_S,))

    def find_response(self, command: str, transaction: str) -> bytes | None:
        """The response already given to (command, transaction), if any."""
        rows = self._read(
            "SELECT response FROM responses WHERE command = ? AND txn = ?", (command, transaction)
        )
        return bytes(rows[0][0]) if rows else None


def _put_setting(
    conn: sqlite3.Connection, key: str, value: Mapping[str, object], now: float
) -> None:
    conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key)"
        " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, dump_json(value), now),
    )


def _floor(since: float | None) -> float:
    return float("-inf") if since is None else since
