"""The inbox: received SMS kept durably, concatenated parts kept until their siblings come,
acknowledgements, unread counts.

A part of a concatenated message (23.040 §9.2.3.24.1) is stored on its own the moment it is
read, before the modem deletes it: a restart between two parts loses nothing. The part that
completes its group turns the group into one message in the same commit. Parts whose group is
still incomplete after the reassembly timeout become one message with ``missing`` listing the
parts that never came (nothing is dropped). A part read twice (a crash between storing and
deleting it) is kept once, also after its group was assembled: assembled parts are kept for a
while, keyed, and forgotten later.

Senders that are phone numbers are stored only as their keyed hash (the same rule as
destinations); ``shown_sender`` is what the operator's privacy setting lets the contract show.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from simbank.store.core import LedgerCore
from simbank.store.schema import InboundSms
from simbank.store.secret import is_phone_number

#: The gap shown where a part never arrived.
MISSING_MARK = " […] "
#: Assembled parts are remembered (to ignore a repeat) this many reassembly timeouts.
FORGET_AFTER_TIMEOUTS = 2

_COLUMNS = (
    "id, iccid, received_at, sender, text, modem_index, modem, shown_sender, sent_at, parts,"
    " missing, acked_at"
)


_GROUP_PARTS = (
    "SELECT sequence, text, received_at, sent_at, modem, shown_sender FROM sms_parts"
    " WHERE iccid = ? AND sender = ? AND reference = ? AND total = ? ORDER BY sequence"
)
_UNREAD_AMONG = "SELECT id, iccid FROM inbound_sms WHERE acked_at IS NULL AND id IN"


@dataclass(frozen=True, slots=True)
class PartStored:
    """What storing one part did: ``sms_id`` of the message it completed (None while the
    group waits), ``duplicate`` when this part was already kept (same text, same time stamp),
    ``closed`` a message an earlier group became early."""

    sms_id: int | None
    duplicate: bool
    #: A waiting group this part's message displaced (the sender re-used its reference):
    #: closed with what had arrived, as at the timeout.
    closed: int | None = None


def _row(r: Any) -> InboundSms:
    missing = tuple(json.loads(r[10])) if r[10] else ()
    return InboundSms(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], missing, r[11])


def assemble(texts: dict[int, str], total: int) -> tuple[str, tuple[int, ...]]:
    """The parts' texts in order, with :data:`MISSING_MARK` where one is missing, and the
    sequence numbers missing."""
    missing = tuple(seq for seq in range(1, total + 1) if seq not in texts)
    pieces: list[str] = []
    for seq in range(1, total + 1):
        if seq in texts:
            pieces.append(texts[seq])
        elif not pieces or pieces[-1] != MISSING_MARK:
            pieces.append(MISSING_MARK)
    return "".join(pieces).strip() if missing else "".join(pieces), missing


class InboxLedger(LedgerCore):
    """Received SMS, their parts, acknowledgements."""

    def _stored_sender(self, sender: str) -> str:
        return self.hasher.hash(sender) if is_phone_number(sender) else sender

    def store_inbound_sms(
        self,
        iccid: str,
        now: float,
        sender: str,
        text: str,
        modem_index: int | None,
        *,
        sent_at: str | None = None,
        modem: str | None = None,
        shown_sender: str | None = None,
    ) -> int | None:
        """Keep a received SMS; returns its id, or None when it is already kept. A sender
        that is a phone number is kept as its keyed hash.

        ``sent_at`` is the service centre's timestamp: with it, the same message read again
        (the daemon died before deleting it from the modem, or a pickup lists it again) is
        recognised and not stored twice. Without it, every call stores a new row.
        """
        dedupe = None
        if sent_at is not None:
            dedupe = self._dedupe(iccid, sender, sent_at, str(modem_index), text)
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO inbound_sms (iccid, received_at, sender, text, modem_index, dedupe,"
                " protected, modem, shown_sender, sent_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    iccid,
                    now,
                    self._stored_sender(sender),
                    text,
                    modem_index,
                    dedupe,
                    modem,
                    shown_sender,
                    sent_at,
                ),
            )
            if cursor.rowcount == 0:
                return None
            sms_id = cursor.lastrowid
        assert sms_id is not None
        return sms_id

    def _dedupe(self, *fields: str) -> str:
        key = "\x1f".join(fields)
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self.hasher.mac(digest.encode("ascii"))

    def store_inbound_part(
        self,
        iccid: str,
        now: float,
        sender: str,
        text: str,
        *,
        reference: int,
        total: int,
        sequence: int,
        sent_at: str | None = None,
        modem: str | None = None,
        shown_sender: str | None = None,
    ) -> PartStored:
        """Keep part ``sequence`` of ``total`` (concatenation ``reference``) durably; when it
        completes its group, the whole message is stored in the same commit."""
        if not 1 <= sequence <= total <= 255:
            raise ValueError(f"part {sequence} of {total} is not a part")
        stored = self._stored_sender(sender)
        key = (iccid, stored, reference, total)
        where = "iccid = ? AND sender = ? AND reference = ? AND total = ?"
        closed: int | None = None
        with self._write() as conn:
            same = conn.execute(
                f"SELECT text, sent_at FROM sms_parts WHERE {where} AND sequence = ?",  # noqa: S608 (constant)
                (*key, sequence),
            ).fetchone()
            if same is not None:
                if (same[0], same[1]) == (text, sent_at):
                    return PartStored(None, duplicate=True)  # the same part read again
                # Another message re-using the reference (senders and short codes do; 8-bit
                # references wrap): the old group is closed as it stands, the new one starts.
                closed = self._close_group(conn, key)
            given_up = conn.execute(
                f"SELECT 1 FROM sms_parts WHERE {where} AND message_id IS NOT NULL LIMIT 1",  # noqa: S608 (constant)
                key,
            ).fetchone()
            conn.execute(
                "INSERT INTO sms_parts (iccid, sender, reference, total, sequence, text,"
                " received_at, sent_at, modem, shown_sender) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, sequence, text, now, sent_at, modem, shown_sender),
            )
            if given_up is not None:
                # A part that came after its group was given up: a message of its own (its
                # siblings are already in the inbox), never dropped.
                row = (sequence, text, now, sent_at, modem, shown_sender)
                return PartStored(self._insert_assembled(conn, key, [row], sequence), False)
            rows = conn.execute(_GROUP_PARTS, key).fetchall()
            if len(rows) < total:
                return PartStored(None, duplicate=False, closed=closed)
            sms_id = self._insert_assembled(conn, key, rows)
        return PartStored(sms_id, duplicate=False, closed=closed)

    def _close_group(self, conn: Any, key: tuple[str, str, int, int]) -> int | None:
        """Make room for a new group under ``key``: parts still waiting become a message with
        what arrived (as at the timeout; its id is returned), then the group is forgotten."""
        rows = conn.execute(
            "SELECT sequence, text, received_at, sent_at, modem, shown_sender FROM sms_parts"
            " WHERE iccid = ? AND sender = ? AND reference = ? AND total = ?"
            " AND message_id IS NULL ORDER BY sequence",
            key,
        ).fetchall()
        closed = self._insert_assembled(conn, key, rows) if rows else None
        conn.execute(
            "DELETE FROM sms_parts WHERE iccid = ? AND sender = ? AND reference = ? AND total = ?",
            key,
        )
        return closed

    def _insert_assembled(
        self,
        conn: Any,
        key: tuple[str, str, int, int],
        rows: list[Any],
        only: int | None = None,
    ) -> int:
        """One message from its parts' rows (sequence, text, received_at, sent_at, modem,
        shown); the group's parts (or only part ``only``) are marked as assembled into it."""
        iccid, stored, reference, total = key
        text, missing = assemble({r[0]: r[1] for r in rows}, total)
        first = min(rows, key=lambda r: r[2])
        sent_at = next((r[3] for r in rows if r[3]), None)
        cursor = conn.execute(
            "INSERT INTO inbound_sms (iccid, received_at, sender, text, modem_index, dedupe,"
            " protected, modem, shown_sender, sent_at, parts, missing)"
            " VALUES (?, ?, ?, ?, NULL, NULL, 1, ?, ?, ?, ?, ?)",
            (
                iccid,
                first[2],
                stored,
                text,
                rows[-1][4],
                first[5],
                sent_at,
                total,
                json.dumps(list(missing)) if missing else None,
            ),
        )
        sms_id = int(cursor.lastrowid or 0)
        conn.execute(
            "UPDATE sms_parts SET message_id = ? WHERE iccid = ? AND sender = ? AND reference = ?"
            " AND total = ? AND (? IS NULL OR sequence = ?)",
            (sms_id, iccid, stored, reference, total, only, only),
        )
        return sms_id

    def expire_inbound_parts(self, now: float, timeout_s: float) -> list[int]:
        """Groups still incomplete ``timeout_s`` after their first part: each becomes one
        message holding what arrived (``missing`` names the rest). Returns their ids, oldest
        first. Assembled parts older than a few timeouts are forgotten."""
        with self._write() as conn:
            groups = conn.execute(
                "SELECT iccid, sender, reference, total FROM sms_parts WHERE message_id IS NULL"
                " GROUP BY iccid, sender, reference, total HAVING MIN(received_at) <= ?"
                " ORDER BY MIN(received_at)",
                (now - timeout_s,),
            ).fetchall()
            ids = []
            for key in groups:
                rows = conn.execute(_GROUP_PARTS, tuple(key)).fetchall()
                ids.append(self._insert_assembled(conn, tuple(key), rows))
            conn.execute(
                "DELETE FROM sms_parts WHERE message_id IS NOT NULL AND received_at < ?",
                (now - FORGET_AFTER_TIMEOUTS * timeout_s,),
            )
        return ids

    def waiting_parts(self) -> int:
        """Parts kept while their group is incomplete."""
        return int(self._read("SELECT COUNT(*) FROM sms_parts WHERE message_id IS NULL")[0][0])

    def _protect_inbound_senders(self) -> None:
        """Rewrite rows stored before schema 5: a phone-number sender becomes its keyed hash
        and the de-duplication key is keyed (so a message read again is still kept once)."""
        rows = self._read("SELECT id, sender, dedupe FROM inbound_sms WHERE protected = 0")
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "UPDATE inbound_sms SET sender = ?, dedupe = ?, protected = 1 WHERE id = ?",
                [
                    (
                        self._stored_sender(sender),
                        None if dedupe is None else self.hasher.mac(dedupe.encode("ascii")),
                        row_id,
                    )
                    for row_id, sender, dedupe in rows
                ],
            )

    def inbound_sms(self, iccid: str | None = None) -> list[InboundSms]:
        """Received SMS, oldest first, optionally for one SIM."""
        sql = f"SELECT {_COLUMNS} FROM inbound_sms"  # noqa: S608 (constant)
        params: tuple[Any, ...] = ()
        if iccid is not None:
            sql += " WHERE iccid = ?"
            params = (iccid,)
        return [_row(r) for r in self._read(sql + " ORDER BY received_at, id", params)]

    def inbox(
        self,
        *,
        iccid: str | None = None,
        modem: str | None = None,
        since: float | None = None,
        unread_only: bool = False,
        after: int = 0,
        limit: int = 50,
    ) -> list[InboundSms]:
        """One page of the inbox in arrival order (by id): messages with an id above
        ``after``, optionally of one SIM or modem, received at or after ``since``, unread."""
        clauses = ["id > ?"]
        params: list[Any] = [after]
        for column, value in (("iccid", iccid), ("modem", modem)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("received_at >= ?")
            params.append(since)
        if unread_only:
            clauses.append("acked_at IS NULL")
        where = " AND ".join(clauses)  # fixed clauses; values are bound
        sql = f"SELECT {_COLUMNS} FROM inbound_sms WHERE {where} ORDER BY id LIMIT ?"  # noqa: S608
        return [_row(r) for r in self._read(sql, (*params, limit))]

    def ack_inbound(
        self,
        now: float,
        *,
        ids: Iterable[int] = (),
        iccid: str | None = None,
        up_to: int | None = None,
    ) -> dict[str, int]:
        """Mark messages read: each of ``ids``, and/or every message of ``iccid`` with an id
        up to ``up_to``. Returns how many were newly acknowledged, per SIM."""
        wanted = sorted(set(ids))
        acked: dict[str, int] = {}
        with self._write() as conn:
            rows: list[Any] = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))  # placeholders only; values are bound
                query = f"{_UNREAD_AMONG} ({marks})"
                rows += conn.execute(query, chunk).fetchall()
            if iccid is not None and up_to is not None:
                rows += conn.execute(
                    "SELECT id, iccid FROM inbound_sms WHERE acked_at IS NULL AND iccid = ?"
                    " AND id <= ?",
                    (iccid, up_to),
                ).fetchall()
            seen: set[int] = set()
            for row_id, owner in rows:
                if row_id in seen:
                    continue
                seen.add(row_id)
                conn.execute("UPDATE inbound_sms SET acked_at = ? WHERE id = ?", (now, row_id))
                acked[owner] = acked.get(owner, 0) + 1
        return acked

    def unread_counts(self) -> dict[str, int]:
        """Unacknowledged messages per SIM (SIMs with none are absent)."""
        rows = self._read(
            "SELECT iccid, COUNT(*) FROM inbound_sms WHERE acked_at IS NULL GROUP BY iccid"
        )
        return {r[0]: int(r[1]) for r in rows}
