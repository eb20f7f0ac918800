"""The ledger's connection and its two ways in: one durable write transaction, one read.

:class:`LedgerCore` is what every part of the ledger (usage, inbox, deliveries, balances) is
built on; :class:`simbank.store.ledger.Ledger` puts them together over one SQLite connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simbank.errors import LedgerError, StorageUnavailable
from simbank.store.secret import DestinationHasher


class LedgerCore:
    """One SQLite connection, its lock, and the install's keyed hasher."""

    def __init__(self, conn: sqlite3.Connection, hasher: DestinationHasher, path: Path) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.hasher = hasher
        self.path = path

    def close(self) -> None:
        """Close the file (idempotent). Uncompleted bookings stay on record as used."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (durably) when the block ends."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:  # a rule of the schema: asked the impossible
                raise LedgerError(f"ledger write refused: {exc}") from exc
            except sqlite3.Error as exc:  # the storage: full, read-only, I/O, locked, corrupt
                raise StorageUnavailable(f"ledger write failed: {exc}") from exc

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageUnavailable(f"ledger read failed: {exc}") from exc


def dump_json(detail: Mapping[str, object]) -> str:
    """A detail document as the ledger stores it (sorted keys, UTF-8 kept)."""
    return json.dumps(detail, sort_keys=True, default=str, ensure_ascii=False)
