"""The ledger's connection and its two ways in: one durable write transaction, one read.

:class:`LedgerCore` is what every part of the ledger (usage, inbox, deliveries, balances) is
built on; :class:`simbank.store.ledger.Ledger` puts them together over one SQLite connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from simbank.errors import LedgerError, StorageUnavailable
from simbank.store.schema import BUSY_TIMEOUT_MS, connect, migrate
from simbank.store.secret import DestinationHasher

#: How long the recovery probe waits for a lock another process holds (the daemon's own
#: writes wait ``BUSY_TIMEOUT_MS``).
PROBE_BUSY_TIMEOUT_MS = 1000


class LedgerCore:
    """One SQLite connection, its lock, and the install's keyed hasher."""

    def __init__(self, conn: sqlite3.Connection, hasher: DestinationHasher, path: Path) -> None:
        self._conn = conn
        #: ``synchronous=FULL`` (durable) or ``NORMAL``: kept by :meth:`probe`'s reconnect.
        self._durable = int(conn.execute("PRAGMA synchronous").fetchone()[0]) >= 2
        self._lock = threading.Lock()
        self.hasher = hasher
        self.path = path
        #: Told of every storage failure, from whichever thread met it (the daemon's storage
        #: watch: the gateway goes ``degraded``). It must not raise.
        self.on_fault: Callable[[StorageUnavailable], None] | None = None
        #: (cause, why) while the gateway is ``degraded``: every write is refused at once,
        #: without waiting on the storage (a locked file would hold each for seconds), until
        #: :meth:`probe` commits again or an operator lifts a hold.
        self.refusing: tuple[str, str] | None = None

    def close(self) -> None:
        """Close the file (idempotent). Uncompleted bookings stay on record as used."""
        with self._lock:
            self._conn.close()

    def probe(self, now: float) -> None:
        """One small durable commit, tried even while writes are refused: whether the storage
        takes writes again (raises :class:`StorageUnavailable` when it does not).

        When the commit fails on the open connection, the file is opened afresh and tried
        once more: a filesystem checked and mounted again after it turned read-only, or a file
        put back, is only seen through a new handle. The file is never created here: a ledger
        that vanished stays missing (quotas never restart from zero unnoticed)."""
        try:
            self._probe_write(now)
        except StorageUnavailable as exc:
            if exc.cause == "locked":  # another process holds it: a new handle changes nothing
                raise
            self._reconnect()
            self._probe_write(now)

    def _reconnect(self) -> None:
        # Under the lock throughout: a file replaced meanwhile (swap_file) is never followed
        # into where the old one was moved.
        with self._lock:
            if not self.path.exists():
                raise StorageUnavailable(f"the ledger {self.path} is missing", cause="io_error")
            try:
                conn = connect(self.path, durable=self._durable, create=False)
            except LedgerError as exc:
                raise StorageUnavailable(str(exc), cause="io_error") from exc
            old, self._conn = self._conn, conn
            with suppress(sqlite3.Error):
                old.close()

    def swap_file(self, replace: Callable[[], object]) -> None:
        """Close the file, let ``replace`` put another in its place (a corrupt ledger moved
        aside, a backup restored), then open and migrate what is there. Blocking, and every
        other ledger call waits meanwhile; a failure leaves the ledger failing every call
        (``StorageUnavailable``) until the next :meth:`probe` opens it."""
        with self._lock:
            with suppress(sqlite3.Error):
                self._conn.close()
            try:
                replace()
            finally:
                # Never created here: a replacement that failed leaves the ledger failing (and
                # the next start restores the backup), not empty.
                conn = connect(self.path, durable=self._durable, create=False)
                try:
                    migrate(conn)
                except LedgerError:
                    conn.close()
                    raise
                self._conn = conn

    def _probe_write(self, now: float) -> None:
        with self._write(probe=True) as conn:
            conn.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES ('storage_probe', ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (dump_json({"at": now}), now),
            )

    @contextmanager
    def _write(self, *, probe: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (durably) when the block ends."""
        refusing = self.refusing
        if refusing is not None and not probe:
            cause, why = refusing
            raise StorageUnavailable(f"the ledger takes no writes now: {why}", cause=cause)
        with self._lock:
            try:
                if probe:  # a file another process keeps locked: know it in a second, not ten
                    self._conn.execute(f"PRAGMA busy_timeout = {PROBE_BUSY_TIMEOUT_MS}")
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    if self._conn.in_transaction:  # SQLite may have rolled it back itself
                        self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:  # a rule of the schema: asked the impossible
                raise LedgerError(f"ledger write refused: {exc}") from exc
            except sqlite3.Error as exc:  # the storage: full, read-only, I/O, locked, corrupt
                # A failed COMMIT may leave the transaction open: the next BEGIN would fail
                # ("within a transaction") long after the storage is back.
                with suppress(sqlite3.Error):  # (a closed handle answers neither)
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                raise self._fault("write", exc) from exc
            finally:
                if probe:
                    with suppress(sqlite3.Error):
                        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._fault("read", exc) from exc

    def _fault(self, what: str, exc: sqlite3.Error) -> StorageUnavailable:
        fault = StorageUnavailable(f"ledger {what} failed: {exc}", cause=storage_cause(exc))
        if self.on_fault is not None:
            self.on_fault(fault)
        return fault


#: SQLite's primary result codes (``sqlite_errorname`` up to the first ``_`` after the
#: prefix) → the cause a ``degraded`` gateway reports.
_CAUSES = {
    "SQLITE_FULL": "disk_full",
    "SQLITE_READONLY": "read_only",
    "SQLITE_IOERR": "io_error",
    "SQLITE_CANTOPEN": "io_error",
    "SQLITE_BUSY": "locked",
    "SQLITE_LOCKED": "locked",
    "SQLITE_CORRUPT": "corrupt",
    "SQLITE_NOTADB": "corrupt",
}


def storage_cause(exc: sqlite3.Error) -> str:
    """What kind of storage failure ``exc`` is (see :class:`StorageUnavailable`)."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    primary = "_".join(name.split("_")[:2])
    cause = _CAUSES.get(primary)
    if cause is not None:
        return cause
    text = str(exc).lower()
    if "malformed" in text or "not a database" in text:
        return "corrupt"
    if "disk is full" in text or "no space" in text:
        return "disk_full"
    if "readonly" in text or "read-only" in text:
        return "read_only"
    if "disk i/o" in text:
        return "io_error"
    if "locked" in text:
        return "locked"
    return "unknown"


def dump_json(detail: Mapping[str, object]) -> str:
    """A detail document as the ledger stores it (sorted keys, UTF-8 kept)."""
    return json.dumps(detail, sort_keys=True, default=str, ensure_ascii=False)
