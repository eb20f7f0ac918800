"""The rules of the gateway's ``degraded`` state (pure), and the ledger's side of them on a
real SQLite file: every write refused at once while degraded, the probe's commit let through,
each SQLite failure named by its cause."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from simbank.errors import StorageUnavailable
from simbank.store.core import storage_cause
from simbank.store.health import RESTORED, SpaceWatch, StorageHealth
from simbank.store.ledger import LEDGER_FILE, Ledger


def test_one_spell_per_failure_run_and_the_probe_ends_it() -> None:
    health = StorageHealth()
    started = health.failed("disk_full", "database or disk is full", 10.0)
    assert started is not None and started.since == 10.0 and not started.held
    # More failures: the same spell (no second start), its cause kept up to date.
    assert health.failed("io_error", "disk I/O error", 11.0) is None
    assert health.degraded is not None and health.degraded.reason == "io_error"
    assert health.degraded.since == 10.0
    ended = health.committed(15.0)
    assert ended is not None and ended.lasted_s == 5.0 and ended.spell.reason == "io_error"
    assert health.ok and health.committed(16.0) is None  # nothing to end twice


def test_a_held_spell_ends_only_with_the_operator() -> None:
    health = StorageHealth()
    assert health.hold("restored from ledger-x", 1.0) is not None
    assert health.committed(2.0) is None  # a commit proves nothing about the quotas
    assert health.failed("disk_full", "full", 3.0) is None
    assert health.degraded is not None and health.degraded.reason == RESTORED
    assert health.degraded.held
    ended = health.confirmed(4.0)
    assert ended is not None and ended.lasted_s == 3.0 and health.ok
    assert health.confirmed(5.0) is None


def test_a_running_spell_becomes_held_keeping_its_start() -> None:
    health = StorageHealth()
    health.failed("corrupt", "database disk image is malformed", 1.0)
    assert health.hold("restored", 2.0) is None  # not a new spell: no second event
    assert health.degraded is not None and health.degraded.since == 1.0
    assert health.degraded.held and health.degraded.reason == RESTORED


def test_free_space_warns_once_below_the_margin_and_rearms_above_it() -> None:
    watch = SpaceWatch(1000)
    assert watch.update(5000) is None
    assert watch.update(999) == "low"
    assert watch.update(10) is None  # still low: no second warning
    assert watch.update(1050) is None  # back above the margin, not above its tenth
    assert watch.update(1100) == "ok"
    assert watch.update(900) == "low"
    assert SpaceWatch(0).update(0) is None  # no margin: no warning


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (sqlite3.OperationalError("database or disk is full"), "disk_full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "read_only"),
        (sqlite3.OperationalError("disk I/O error"), "io_error"),
        (sqlite3.OperationalError("database is locked"), "locked"),
        (sqlite3.DatabaseError("database disk image is malformed"), "corrupt"),
        (sqlite3.DatabaseError("file is not a database"), "corrupt"),
        (sqlite3.OperationalError("something else"), "unknown"),
    ],
)
def test_each_sqlite_failure_is_named_by_its_cause(exc: sqlite3.Error, cause: str) -> None:
    assert storage_cause(exc) == cause


def test_a_real_not_a_database_error_is_corrupt(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not an SQLite file at all" * 200)
    with pytest.raises(sqlite3.DatabaseError) as caught:
        sqlite3.connect(bad).execute("SELECT * FROM sqlite_master").fetchall()
    assert storage_cause(caught.value) == "corrupt"


def test_a_degraded_ledger_refuses_writes_untried_but_the_probe_commits(tmp_path: Path) -> None:
    faults: list[StorageUnavailable] = []
    with Ledger.open(tmp_path, durable=False) as ledger:
        ledger.on_fault = faults.append
        ledger.refusing = ("disk_full", "database or disk is full")
        with pytest.raises(StorageUnavailable) as refused:
            ledger.book("8999010000000000001", "call", 1.0, reserved_s=60)
        assert refused.value.cause == "disk_full"
        assert not faults  # refused before SQLite was asked: no new failure to report
        ledger.probe(2.0)  # the probe's own commit goes through
        assert ledger.get_setting("storage_probe") == {"at": 2.0}
        ledger.refusing = None
        assert ledger.book("8999010000000000001", "call", 3.0, reserved_s=60) > 0
        assert len(ledger.usage_records("8999010000000000001", 0)) == 1


def test_the_probe_opens_the_file_afresh_but_never_creates_one(tmp_path: Path) -> None:
    with Ledger.open(tmp_path, durable=False) as ledger:
        ledger.book("8999010000000000001", "sms", 1.0)
        ledger._conn.close()  # the handle is gone (as on a filesystem remounted under it)
        ledger.probe(2.0)  # a fresh handle on the same file
        assert len(ledger.usage_records("8999010000000000001", 0)) == 1
        (tmp_path / LEDGER_FILE).rename(tmp_path / "elsewhere")
        ledger._conn.close()
        with pytest.raises(StorageUnavailable, match="missing"):
            ledger.probe(3.0)  # a vanished ledger is not silently replaced by an empty one
        assert not (tmp_path / LEDGER_FILE).exists()
