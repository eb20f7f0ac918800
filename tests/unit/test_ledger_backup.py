"""Ledger backups over real SQLite files: online while a writer works, verified, kept N deep,
bad ones skipped, a failure leaves nothing behind, the install secret kept beside them."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from simbank.bank.usage import UsageKind
from simbank.store.backup import (
    BackupFailed,
    backup_name,
    backup_time,
    latest_good_backup,
    list_backups,
    make_backup,
    prune_backups,
    verify_backup,
)
from simbank.store.ledger import LEDGER_FILE, Ledger
from simbank.store.schema import SCHEMA_VERSION
from simbank.store.secret import SECRET_FILE

ICCID = "89440000000000000017"
T0 = 1_780_000_000.0


@pytest.fixture
def ledger(state_dir: Path) -> Iterator[Ledger]:
    opened = Ledger.open(state_dir, durable=False)
    for n in range(5):
        opened.book(ICCID, UsageKind.CALL, T0 + n, reserved_s=60, destination="+15550100")
    yield opened
    opened.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _garble(path: Path, offset: int, length: int = 512) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(b"\xa5" * length)


def test_a_backup_is_taken_while_the_ledger_is_open_and_writing(
    ledger: Ledger, state_dir: Path, backup_dir: Path
) -> None:
    # Another connection holds an open write transaction (the daemon in the middle of a
    # booking): the backup is a consistent snapshot without it, and does not wait for it.
    writer = sqlite3.connect(state_dir / LEDGER_FILE, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(
        "INSERT INTO usage (iccid, kind, booked_at) VALUES (?, 'sms', ?)", (ICCID, T0 + 99)
    )
    try:
        info = make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0 + 100)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    ledger.book(ICCID, UsageKind.SMS, T0 + 101)  # the ledger goes on working

    assert info.path == backup_dir / backup_name(T0 + 100)
    assert info.path.name.startswith("ledger-") and info.path.name.endswith("Z.sqlite3")
    assert (info.usage_rows, info.schema_version, info.newest_usage_at) == (
        5,
        SCHEMA_VERSION,
        T0 + 4,
    )
    assert info.created_at == pytest.approx(T0 + 100)
    assert info.size_bytes == info.path.stat().st_size > 0
    assert _mode(backup_dir) == 0o700
    assert _mode(info.path) == 0o600
    # One self-contained file: no journal, WAL or temporary file beside it.
    assert sorted(p.name for p in backup_dir.iterdir()) == sorted([info.path.name, SECRET_FILE])
    assert verify_backup(info.path).usage_rows == 5
    # The install secret is kept beside the backups, private.
    assert (backup_dir / SECRET_FILE).read_bytes() == (state_dir / SECRET_FILE).read_bytes()
    assert _mode(backup_dir / SECRET_FILE) == 0o600
    # The copy opens as a ledger with the same rows (and nothing of the rolled-back one).
    restored = sqlite3.connect(f"{info.path.as_uri()}?mode=ro", uri=True)
    kinds = restored.execute("SELECT kind, COUNT(*) FROM usage GROUP BY kind").fetchall()
    restored.close()
    assert kinds == [("call", 5)]


def test_backups_are_kept_n_deep_newest_first(
    ledger: Ledger, state_dir: Path, backup_dir: Path
) -> None:
    made = [
        make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0 + 3600 * n).path
        for n in range(5)
    ]
    listed = list_backups(backup_dir)
    assert [info.path for info in listed] == made[:1:-1]  # the newest three, newest first
    assert [info.created_at for info in listed] == [T0 + 3600 * n for n in (4, 3, 2)]
    assert all(info.usage_rows is None for info in listed)  # listed, not opened
    assert not made[0].exists() and not made[1].exists()


def test_two_backups_in_one_instant_get_two_names(
    ledger: Ledger, state_dir: Path, backup_dir: Path
) -> None:
    first = make_backup(state_dir / LEDGER_FILE, backup_dir, keep=5, now=T0)
    ledger.book(ICCID, UsageKind.SMS, T0 + 10)
    second = make_backup(state_dir / LEDGER_FILE, backup_dir, keep=5, now=T0)
    assert first.path != second.path
    assert [info.path for info in list_backups(backup_dir)] == [second.path, first.path]
    assert (first.usage_rows, second.usage_rows) == (5, 6)


def test_a_truncated_or_garbled_backup_is_skipped(
    ledger: Ledger, state_dir: Path, backup_dir: Path
) -> None:
    oldest, middle, newest = (
        make_backup(state_dir / LEDGER_FILE, backup_dir, keep=5, now=T0 + n).path for n in range(3)
    )
    with newest.open("r+b") as f:
        f.truncate(newest.stat().st_size // 2)
    _garble(middle, 0, 100)  # the header: not a database any more
    with pytest.raises(BackupFailed, match=r"integrity|unreadable|cannot open"):
        verify_backup(newest)
    with pytest.raises(BackupFailed):
        verify_backup(middle)

    good = latest_good_backup(backup_dir)
    assert good is not None
    assert good.path == oldest
    assert good.usage_rows == 5
    _garble(oldest, 4096 * 2, 4096)  # a page in the middle
    assert latest_good_backup(backup_dir) is None


def test_a_file_that_is_no_ledger_is_no_backup(tmp_path: Path) -> None:
    other = tmp_path / backup_name(T0)
    sqlite3.connect(other).close()  # an empty SQLite file: no schema
    with pytest.raises(BackupFailed, match="not a ledger"):
        verify_backup(other)
    assert latest_good_backup(tmp_path) is None
    assert backup_time("ledger.sqlite3") is None
    assert backup_time(backup_name(T0 + 0.25)) == pytest.approx(T0 + 0.25)


def test_a_failed_backup_leaves_nothing_behind(
    ledger: Ledger, state_dir: Path, backup_dir: Path
) -> None:
    ledger.close()
    _garble(state_dir / LEDGER_FILE, 0, 100)
    with pytest.raises(BackupFailed):
        make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0)
    assert list(backup_dir.iterdir()) == []
    with pytest.raises(BackupFailed, match="no ledger"):
        make_backup(state_dir / "missing.sqlite3", backup_dir, keep=3, now=T0)


def test_a_full_backup_filesystem_fails_clearly_and_leaves_nothing(
    state_dir: Path, backup_dir: Path
) -> None:
    """The file size limit stands in for a full disk: writes past it fail (EFBIG) as they
    would with ENOSPC, only in the process that took the backup."""
    with Ledger.open(state_dir, durable=False) as big:
        for n in range(800):
            big.book(ICCID, UsageKind.SMS, T0 + n, destination=f"+1555010{n % 100:02d}")
    size = (state_dir / LEDGER_FILE).stat().st_size
    assert size > 64 * 1024
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        from simbank.store.backup import BackupFailed, make_backup
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
        try:
            make_backup(Path({str(state_dir / LEDGER_FILE)!r}), Path({str(backup_dir)!r}), 3, 1.0)
        except BackupFailed as exc:
            print("failed:", exc)
            sys.exit(0)
        sys.exit(1)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("failed: backup of ")
    assert [p.name for p in backup_dir.iterdir()] == []
    assert (state_dir / LEDGER_FILE).stat().st_size == size


def test_a_changed_secret_is_copied_and_the_old_one_kept(
    ledger: Ledger, state_dir: Path, backup_dir: Path
) -> None:
    make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0)
    old = (backup_dir / SECRET_FILE).read_bytes()
    (state_dir / SECRET_FILE).write_bytes(b"ab" * 32 + b"\n")
    make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0 + 1)
    assert (backup_dir / SECRET_FILE).read_bytes() == b"ab" * 32 + b"\n"
    replaced = [p for p in backup_dir.iterdir() if p.name.startswith("secret-replaced-")]
    assert [p.read_bytes() for p in replaced] == [old]


def test_stale_temporary_files_are_pruned(backup_dir: Path) -> None:
    backup_dir.mkdir()
    stale = backup_dir / ".ledger-123-1.000000.tmp"
    fresh = backup_dir / ".ledger-124-2.000000.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"x")
    os.utime(stale, (T0 - 7200, T0 - 7200))
    os.utime(fresh, (T0 - 10, T0 - 10))
    assert prune_backups(backup_dir, keep=1, now=T0) == [stale]
    assert fresh.exists()


def test_the_answer_data(ledger: Ledger, state_dir: Path, backup_dir: Path) -> None:
    data = make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0).to_data()
    assert data["path"] == str(backup_dir / backup_name(T0))
    assert data["created_at"] == "2026-05-28T20:26:40Z"
    assert data["usage_rows"] == 5
    assert data["schema_version"] == SCHEMA_VERSION
    assert isinstance(data["size_bytes"], int)
