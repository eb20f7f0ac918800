"""Which failures at start are the storage's (``simbankd run`` then waits, degraded) and which
are not (it exits with the error): ``simbank.daemon.standin.startup_cause``; and the cheap test
the waiting daemon runs before it tries to start (``storage_writable``)."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from simbank.daemon.standin import startup_cause, storage_writable
from simbank.errors import LedgerError, StorageUnavailable
from simbank.store.ledger import LEDGER_FILE


def _ledger_error(message: str) -> LedgerError:
    """As ``store.schema.connect`` raises it: a LedgerError from SQLite's error."""
    try:
        try:
            raise sqlite3.OperationalError(message)
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger.sqlite3: cannot open the ledger: {exc}") from exc
    except LedgerError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "disk_full"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk_full"),
        (OSError(errno.EROFS, "Read-only file system"), "read_only"),
        (OSError(errno.EIO, "Input/output error"), "io_error"),
        (_ledger_error("database or disk is full"), "disk_full"),
        (_ledger_error("attempt to write a readonly database"), "read_only"),
        (_ledger_error("database is locked"), "locked"),
        (StorageUnavailable("restore failed", cause="disk_full"), "disk_full"),
        # Not the storage's: waiting would not help.
        (OSError(errno.EACCES, "Permission denied"), None),
        (_ledger_error("file is not a database"), None),
        (StorageUnavailable("odd", cause="unknown"), None),
        (LedgerError("the ledger is at schema 99, newer than this simbank"), None),
        (ValueError("not storage at all"), None),
    ],
)
def test_storage_failures_are_told_from_others(
    exc: BaseException, cause: str | None, tmp_path: Path
) -> None:
    assert startup_cause(exc, tmp_path / "state") == cause


def test_an_io_error_on_a_roomy_writable_filesystem_stays_an_io_error(tmp_path: Path) -> None:
    # (A full one says disk_full, a read-only one read_only: the integration test mounts both.)
    assert startup_cause(_ledger_error("disk I/O error"), tmp_path / "not" / "made") == "io_error"


def test_the_cheap_storage_test_passes_on_a_writable_directory_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    storage_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_cheap_storage_test_meets_a_ledger_another_process_locks(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILE
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # what a stuck writer holds
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            storage_writable(tmp_path)
        assert startup_cause(caught.value, tmp_path) == "locked"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    storage_writable(tmp_path)  # free again
