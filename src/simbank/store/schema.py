"""The ledger's SQLite schema, as an ordered list of migrations (``PRAGMA user_version``), and
the shapes of the rows it hands out.

Each migration runs in its own ``BEGIN IMMEDIATE`` transaction that re-reads the version
first, so two processes opening a fresh file at once apply each migration exactly once.
Migrations are only ever appended; a released one is never edited.

The usage table is append-only, enforced by triggers: rows are never deleted (but by the
retention fold, schema 8, which moves rows older than its horizon into daily totals), and the
only update allowed is completing a booking once (outcome, completion time, duration).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from simbank.errors import LedgerError

BUSY_TIMEOUT_MS = 10_000

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the first schema.
    (
        """CREATE TABLE usage (
            id INTEGER PRIMARY KEY,
            iccid TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('call', 'sms', 'ussd')),
            booked_at REAL NOT NULL,
            reserved_s INTEGER NOT NULL DEFAULT 0 CHECK (reserved_s >= 0),
            completed_at REAL,
            outcome TEXT,
            duration_s INTEGER NOT NULL DEFAULT 0 CHECK (duration_s >= 0),
            destination TEXT,
            modem TEXT,
            txn TEXT
        )""",
        # The policy reads one SIM's recent rows; the destination cap counts one hash's rows.
        "CREATE INDEX usage_by_sim ON usage (iccid, booked_at)",
        "CREATE INDEX usage_by_destination ON usage (destination, booked_at)"
        " WHERE destination IS NOT NULL",
        """CREATE TRIGGER usage_no_delete BEFORE DELETE ON usage
            BEGIN SELECT RAISE(ABORT, 'usage is append-only'); END""",
        """CREATE TRIGGER usage_complete_once BEFORE UPDATE ON usage
            WHEN OLD.completed_at IS NOT NULL OR NEW.completed_at IS NULL
              OR NEW.id IS NOT OLD.id OR NEW.iccid IS NOT OLD.iccid OR NEW.kind IS NOT OLD.kind
              OR NEW.booked_at IS NOT OLD.booked_at OR NEW.reserved_s IS NOT OLD.reserved_s
              OR NEW.destination IS NOT OLD.destination OR NEW.modem IS NOT OLD.modem
              OR NEW.txn IS NOT OLD.txn
            BEGIN SELECT RAISE(ABORT, 'a booking is completed once and never rewritten'); END""",
        """CREATE TABLE sim_state (
            iccid TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            reason TEXT,
            since REAL NOT NULL,
            note TEXT
        )""",
        """CREATE TABLE evidence (
            id INTEGER PRIMARY KEY,
            iccid TEXT NOT NULL,
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL
        )""",
        "CREATE INDEX evidence_by_sim ON evidence (iccid, at)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            iccid TEXT,
            detail TEXT NOT NULL
        )""",
        "CREATE INDEX audit_by_sim ON audit (iccid, at)",
        """CREATE TABLE inbound_sms (
            id INTEGER PRIMARY KEY,
            iccid TEXT NOT NULL,
            received_at REAL NOT NULL,
            sender TEXT NOT NULL,
            text TEXT NOT NULL,
            modem_index INTEGER
        )""",
        "CREATE INDEX inbound_sms_by_sim ON inbound_sms (iccid, received_at)",
        """CREATE TABLE responses (
            command TEXT NOT NULL,
            txn TEXT NOT NULL,
            response BLOB NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (command, txn)
        )""",
        "CREATE INDEX responses_by_age ON responses (at)",
    ),
    # 2: small JSON documents that must survive a restart (circuit breaker, traffic pause).
    (
        """CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL
        )""",
    ),
    # 3: requests started and not yet answered. A row is written (durably) before a command
    # that changes something runs, and removed in the commit that stores its response: a row
    # left over after a restart is a request the crash interrupted, never to be run again.
    (
        """CREATE TABLE transactions (
            command TEXT NOT NULL,
            txn TEXT NOT NULL,
            started_at REAL NOT NULL,
            PRIMARY KEY (command, txn)
        )""",
        "CREATE INDEX transactions_by_age ON transactions (started_at)",
        # What an interrupted request booked is looked up by its transaction.
        "CREATE INDEX usage_by_txn ON usage (txn) WHERE txn IS NOT NULL",
    ),
    # 4: an inbound SMS read again (a crash between storing and deleting it on the modem, or
    # an AT+CMGL pickup) is recognised by a keyed hash of what identifies it and kept once.
    (
        "ALTER TABLE inbound_sms ADD COLUMN dedupe TEXT",
        "CREATE UNIQUE INDEX inbound_sms_once ON inbound_sms (dedupe) WHERE dedupe IS NOT NULL",
    ),
    # 5: an inbound SMS's sender, when it is a phone number, is kept only as its keyed hash,
    # and the de-duplication key is keyed too. Rows written before (``protected = 0``) are
    # rewritten by the ledger when it opens (the hash needs the install's secret).
    ("ALTER TABLE inbound_sms ADD COLUMN protected INTEGER NOT NULL DEFAULT 0",),
    # 6: the inbox (which modem, the sender as published, the service centre's time, how many
    # parts and which never came, acknowledged when), parts of concatenated messages waiting
    # for their siblings (durable, so a restart between parts loses nothing), every SMS segment
    # sent with its message reference and delivery outcome, and each SIM's last balance check.
    (
        "ALTER TABLE inbound_sms ADD COLUMN modem TEXT",
        "ALTER TABLE inbound_sms ADD COLUMN shown_sender TEXT",
        "ALTER TABLE inbound_sms ADD COLUMN sent_at TEXT",
        "ALTER TABLE inbound_sms ADD COLUMN parts INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE inbound_sms ADD COLUMN missing TEXT",
        "ALTER TABLE inbound_sms ADD COLUMN acked_at REAL",
        "CREATE INDEX inbound_sms_unread ON inbound_sms (iccid) WHERE acked_at IS NULL",
        """CREATE TABLE sms_parts (
            iccid TEXT NOT NULL,
            sender TEXT NOT NULL,
            reference INTEGER NOT NULL,
            total INTEGER NOT NULL CHECK (total BETWEEN 1 AND 255),
            sequence INTEGER NOT NULL CHECK (sequence BETWEEN 1 AND total),
            text TEXT NOT NULL,
            received_at REAL NOT NULL,
            sent_at TEXT,
            modem TEXT,
            shown_sender TEXT,
            message_id INTEGER,
            PRIMARY KEY (iccid, sender, reference, total, sequence)
        )""",
        "CREATE INDEX sms_parts_waiting ON sms_parts (received_at) WHERE message_id IS NULL",
        """CREATE TABLE sms_sent (
            id INTEGER PRIMARY KEY,
            message INTEGER NOT NULL,
            txn TEXT,
            iccid TEXT NOT NULL,
            modem TEXT NOT NULL,
            reference INTEGER NOT NULL,
            segment INTEGER NOT NULL,
            segments INTEGER NOT NULL,
            sent_at REAL NOT NULL,
            report_requested INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'sent',
            status_code INTEGER,
            reported_at REAL
        )""",
        "CREATE INDEX sms_sent_by_reference ON sms_sent (modem, reference, sent_at)",
        "CREATE INDEX sms_sent_by_message ON sms_sent (message)",
        "CREATE INDEX sms_sent_by_sim ON sms_sent (iccid, sent_at)",
        """CREATE TABLE sim_balance (
            iccid TEXT PRIMARY KEY,
            amount TEXT,
            low INTEGER NOT NULL,
            checked_at REAL NOT NULL,
            calls_at_check INTEGER NOT NULL DEFAULT 0,
            detail TEXT
        )""",
    ),
    # 7: inbound calls, one row per call (not per RING): the SIM rung, the caller as its keyed
    # hash (NULL when withheld) and as the event showed it, how it ended. They never count
    # against the outbound quotas (the usage table is not touched).
    (
        """CREATE TABLE inbound_calls (
            id INTEGER PRIMARY KEY,
            iccid TEXT NOT NULL,
            modem TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL NOT NULL,
            caller TEXT,
            shown_caller TEXT NOT NULL,
            rings INTEGER NOT NULL CHECK (rings >= 0),
            action TEXT NOT NULL,
            reason TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('answered', 'missed', 'rejected'))
        )""",
        "CREATE INDEX inbound_calls_by_sim ON inbound_calls (iccid, started_at)",
    ),
    # 8: retention (simbank.store.retention). Usage rows and events older than the configured
    # horizon are folded into per-SIM daily totals and removed. A "day" is a calendar day in
    # the gateway's time zone at the fold (``day``; ``day_start``, its local midnight in epoch
    # seconds), so a billing month, which starts at local midnight, is a whole number of them;
    # ``first_at``
    # and ``last_at`` bound the rows actually folded into a total, so a reader can tell a
    # period that holds a total whole from one that cuts it. A call total is split at the
    # SIM's last balance check as of the fold (``after_check``: booked after it), which keeps
    # "calls since the last check" exact however old that check is.
    #
    # The usage table stays append-only for everyone but the fold: a row may be deleted only
    # while a ``fold_in_progress`` row exists, and only if it was booked before that row's
    # cutoff. The fold writes that row, folds, deletes and removes it in ONE transaction, so
    # it is never seen committed. The daily tables are never deleted from.
    (
        """CREATE TABLE fold_in_progress (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            cutoff REAL NOT NULL
        )""",
        "DROP TRIGGER usage_no_delete",
        """CREATE TRIGGER usage_no_delete BEFORE DELETE ON usage
            WHEN NOT EXISTS (SELECT 1 FROM fold_in_progress WHERE OLD.booked_at < cutoff)
            BEGIN SELECT RAISE(ABORT, 'usage is append-only (but for the retention fold)'); END""",
        """CREATE TABLE usage_daily (
            iccid TEXT NOT NULL,
            day_start REAL NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('call', 'sms', 'ussd')),
            after_check INTEGER NOT NULL CHECK (after_check IN (0, 1)),
            day TEXT NOT NULL,
            count INTEGER NOT NULL CHECK (count >= 0),
            completed INTEGER NOT NULL CHECK (completed >= 0),
            reserved_s INTEGER NOT NULL,
            charged_s INTEGER NOT NULL,
            duration_s INTEGER NOT NULL,
            first_at REAL NOT NULL,
            last_at REAL NOT NULL,
            PRIMARY KEY (iccid, day_start, kind, after_check)
        ) WITHOUT ROWID""",
        """CREATE TRIGGER usage_daily_no_delete BEFORE DELETE ON usage_daily
            BEGIN SELECT RAISE(ABORT, 'folded usage is kept for good'); END""",
        """CREATE TRIGGER usage_daily_only_grows BEFORE UPDATE ON usage_daily
            WHEN NEW.count < OLD.count OR NEW.charged_s < OLD.charged_s
              OR NEW.iccid IS NOT OLD.iccid OR NEW.day_start IS NOT OLD.day_start
              OR NEW.kind IS NOT OLD.kind OR NEW.after_check IS NOT OLD.after_check
            BEGIN SELECT RAISE(ABORT, 'a folded total only grows'); END""",
        # source: the table the rows came from; kind: the evidence kind, the audit action,
        # a sent segment's status, an inbound call's outcome ('' when none); iccid '' for
        # audit entries about no SIM. Keyed by day first: each fold appends to the end of the
        # b-tree, so its pages stay full (nothing reads it by SIM on a hot path).
        """CREATE TABLE event_daily (
            day_start REAL NOT NULL,
            iccid TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('evidence', 'audit', 'inbound_sms',
                'sms_parts', 'sms_sent', 'inbound_calls')),
            kind TEXT NOT NULL,
            day TEXT NOT NULL,
            count INTEGER NOT NULL CHECK (count >= 0),
            PRIMARY KEY (day_start, iccid, source, kind)
        ) WITHOUT ROWID""",
        """CREATE TRIGGER event_daily_no_delete BEFORE DELETE ON event_daily
            BEGIN SELECT RAISE(ABORT, 'folded events are kept for good'); END""",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class SimRecord:
    """A SIM's current state as last set (``since``: when it entered that state)."""

    state: str
    reason: str | None
    since: float
    note: str | None


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of block evidence."""

    id: int
    iccid: str
    at: float
    kind: str
    detail: dict[str, object]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One rotation or operator command (``iccid`` taken from ``detail['iccid']``)."""

    id: int
    at: float
    actor: str
    action: str
    iccid: str | None
    detail: dict[str, object]


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A received SMS. ``sender`` is the keyed hash of a phone number (as destinations are),
    or a short code or name ("Vodafone") as the modem reported it."""

    id: int
    iccid: str
    received_at: float
    sender: str
    text: str
    modem_index: int | None
    #: The modem it was read from, the sender as published (masked unless the operator asked
    #: for it in clear), the service centre's time stamp as the modem gave it.
    modem: str | None = None
    shown_sender: str | None = None
    sent_at: str | None = None
    #: How many parts the message had, and those that never arrived (given up after the
    #: reassembly timeout): a message with ``missing`` is incomplete.
    parts: int = 1
    missing: tuple[int, ...] = ()
    acked_at: float | None = None


def connect(path: Path, *, durable: bool = True, create: bool = True) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with ``synchronous=FULL`` (``NORMAL`` if not ``durable``);
    ``create=False``: only a file that exists.

    The connection is in autocommit mode: every write is an explicit transaction.
    """
    try:
        target = str(path) if create else f"file:{quote(str(path))}?mode=rw"
        conn = sqlite3.connect(
            target, isolation_level=None, check_same_thread=False, timeout=10, uri=not create
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = _switch_to_wal(conn)
        if mode != "wal":
            raise LedgerError(f"{path}: cannot switch to WAL (journal_mode is {mode})")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise LedgerError(f"{path}: cannot open the ledger: {exc}") from exc
    return conn


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """Set WAL mode, retrying while another connection holds the lock: switching a fresh file
    can fail at once with 'database is locked' (the busy handler is not consulted)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def schema_version(conn: sqlite3.Connection) -> int:
    """The version the file is at (0: empty)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every missing migration; returns how many were applied (0 when up to date)."""
    applied = 0
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            version = schema_version(conn)
            if version > SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                raise LedgerError(
                    f"the ledger is at schema {version}, newer than this simbank ({SCHEMA_VERSION})"
                )
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return applied
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise LedgerError(
                f"migration to schema {schema_version(conn) + 1} failed: {exc}"
            ) from exc
        applied += 1
