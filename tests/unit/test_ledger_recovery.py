"""A corrupt ledger over real SQLite files: found by the integrity check, moved aside (never
deleted), replaced by the newest good backup with the newer readable rows salvaged, and held
until an operator confirms; a running process holding the ledger is found."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from simbank.bank.usage import UsageKind
from simbank.store.backup import latest_good_backup, make_backup
from simbank.store.ledger import LEDGER_FILE, Ledger
from simbank.store.recovery import (
    CORRUPT_DIR,
    RECOVERY_KEY,
    LedgerInUse,
    check_ledger,
    confirm_recovery,
    ledger_holder,
    lock_state_dir,
    move_aside,
    recover,
    recovery_pending,
    restore,
)
from simbank.store.secret import SECRET_FILE

ICCID = "89440000000000000017"
OTHER = "89440000000000000025"
T0 = 1_780_000_000.0


def _book(state_dir: Path, first: int, count: int) -> None:
    with Ledger.open(state_dir, durable=False) as ledger:
        for n in range(first, first + count):
            ledger.book(ICCID, UsageKind.CALL, T0 + n, reserved_s=60, destination="+15550101")


def _page_of(path: Path, sql: str) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        page = int(conn.execute(sql).fetchone()[0])
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    return page, size


def _garble_page(path: Path, page: int, size: int) -> None:
    """The whole page, its header too: SQLite cannot read any of it. (Half a page left what
    stayed readable to the rows' contents, which the random install secret varies: the
    salvage then sometimes met no unreadable row at all.)"""
    with path.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xff" * size)


def _corrupt_index(path: Path) -> None:
    """Garble the usage index: the integrity check fails, the table itself stays readable."""
    page, size = _page_of(path, "SELECT rootpage FROM sqlite_master WHERE name = 'usage_by_sim'")
    _garble_page(path, page, size)


@pytest.fixture
def pending(state_dir: Path, backup_dir: Path) -> Iterator[Ledger]:
    """20 bookings backed up, 30 more (and one older booking completed) after the backup,
    the file corrupted, recovered: the reopened ledger."""
    _book(state_dir, 0, 20)
    make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0 + 100)
    _book(state_dir, 200, 30)
    with Ledger.open(state_dir, durable=False) as ledger:
        ledger.complete(1, T0 + 300, "answered", 42)
        ledger.set_sim_state(ICCID, "quarantined", T0 + 301, reason="blocked")
        ledger.audit(T0 + 302, "operator", "sim_disable", {"iccid": OTHER})
    _corrupt_index(state_dir / LEDGER_FILE)
    outcome = recover(state_dir, backup_dir, T0 + 1000)
    assert outcome.corrupt
    opened = Ledger.open(state_dir)
    yield opened
    opened.close()


def test_a_sound_ledger_is_left_alone(state_dir: Path, backup_dir: Path) -> None:
    _book(state_dir, 0, 3)
    assert check_ledger(state_dir / LEDGER_FILE).status == "ok"
    assert check_ledger(state_dir / LEDGER_FILE, quick=True).status == "ok"
    outcome = recover(state_dir, backup_dir, T0)
    assert (outcome.corrupt, outcome.acted, outcome.moved_to) == (False, False, None)
    assert not (state_dir / CORRUPT_DIR).exists()


def test_a_missing_ledger_is_absent_not_corrupt(state_dir: Path, backup_dir: Path) -> None:
    report = check_ledger(state_dir / LEDGER_FILE)
    assert (report.status, report.corrupt) == ("absent", False)
    outcome = recover(state_dir, backup_dir, T0)
    assert not outcome.acted
    assert not (state_dir / LEDGER_FILE).exists()  # Ledger.open will start a fresh one


@pytest.mark.parametrize("where", ["header", "index", "table"])
def test_the_integrity_check_finds_corruption(state_dir: Path, where: str) -> None:
    _book(state_dir, 0, 200)
    path = state_dir / LEDGER_FILE
    if where == "header":
        with path.open("r+b") as f:
            f.write(b"garbage" * 14)
    elif where == "index":
        _corrupt_index(path)
    else:
        page, size = _page_of(path, "SELECT rootpage FROM sqlite_master WHERE name = 'usage'")
        _garble_page(path, page, size)
    report = check_ledger(path)
    assert report.status == "corrupt"
    assert report.corrupt
    assert report.detail
    assert "\n" not in report.detail


def test_move_aside_keeps_the_ledger_and_its_wal(state_dir: Path) -> None:
    # A process that died without closing: the ledger's -wal and -shm are left.
    _crash_after_booking(state_dir, 5)
    path = state_dir / LEDGER_FILE
    assert Path(f"{path}-wal").exists()
    moved = move_aside(path, T0)
    assert moved.parent.parent == state_dir / CORRUPT_DIR
    assert sorted(p.name for p in moved.parent.iterdir()) == [
        LEDGER_FILE,
        f"{LEDGER_FILE}-shm",
        f"{LEDGER_FILE}-wal",
    ]
    assert not path.exists()
    assert not Path(f"{path}-wal").exists()
    again = move_aside(path, T0)  # same instant, nothing left to move: a new directory
    assert again.parent != moved.parent
    # What was moved is whole: the five bookings of the WAL are readable there.
    conn = sqlite3.connect(f"{moved.as_uri()}?mode=ro", uri=True)
    assert conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0] == 5
    conn.close()


def test_a_corrupt_ledger_is_restored_from_the_backup_with_newer_rows_salvaged(
    pending: Ledger, state_dir: Path, backup_dir: Path
) -> None:
    records = pending.usage_records(ICCID, 0)
    assert [r.booked_at for r in records] == [T0 + n for n in range(20)] + [
        T0 + n for n in range(200, 230)
    ]
    assert [r.id for r in records] == list(range(1, 51))  # booking ids kept
    assert records[0].completed_at == T0 + 300  # completed after the backup: salvaged too
    assert records[0].duration_s == 42
    assert pending.sim_states()[ICCID].state == "quarantined"
    assert [a.action for a in pending.audit_trail()][:1] == ["sim_disable"]
    assert check_ledger(state_dir / LEDGER_FILE).status == "ok"

    record = recovery_pending(pending)
    assert record is not None
    assert record["confirmed"] is False
    assert record["reason"] == "corrupt"
    assert record["restored_from"] == str(latest_good_backup(backup_dir).path)  # type: ignore[union-attr]
    assert record["salvaged"]["usage"] == 30
    assert record["salvaged"]["usage_completed"] == 1
    moved = Path(record["moved_to"])
    assert moved.exists()
    assert moved.parent.parent == state_dir / CORRUPT_DIR
    assert check_ledger(moved).corrupt  # kept as it was, for an expert


def test_confirming_a_recovery_ends_the_hold_and_is_audited(pending: Ledger) -> None:
    confirmed = confirm_recovery(pending, T0 + 2000, "operator", note="quotas checked")
    assert confirmed is not None
    assert (confirmed["confirmed"], confirmed["confirmed_by"]) == (True, "operator")
    assert recovery_pending(pending) is None
    assert pending.get_setting(RECOVERY_KEY)["confirmed_at"] == T0 + 2000  # type: ignore[index]
    audit = [a for a in pending.audit_trail() if a.action == "ledger_recovery_confirmed"]
    assert [(a.actor, a.detail["note"]) for a in audit] == [("operator", "quotas checked")]
    # Again: nothing changes, nothing is audited twice.
    assert confirm_recovery(pending, T0 + 3000, "someone")["confirmed_by"] == "operator"  # type: ignore[index]
    assert len([a for a in pending.audit_trail() if a.action == "ledger_recovery_confirmed"]) == 1


def test_nothing_to_confirm(state_dir: Path) -> None:
    with Ledger.open(state_dir, durable=False) as ledger:
        assert recovery_pending(ledger) is None
        assert confirm_recovery(ledger, T0, "operator") is None


def test_rows_past_an_unreadable_page_are_salvaged(state_dir: Path, backup_dir: Path) -> None:
    _book(state_dir, 0, 100)
    make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0 + 1)
    _book(state_dir, 100, 400)
    path = state_dir / LEDGER_FILE
    page, size = _page_of(
        path,
        "SELECT pageno FROM dbstat WHERE name = 'usage' AND pagetype = 'leaf'"
        " ORDER BY pageno LIMIT 1 OFFSET 5",
    )
    _garble_page(path, page, size)
    outcome = recover(state_dir, backup_dir, T0 + 1000)
    assert outcome.corrupt
    assert any("usage:" in note for note in outcome.notes)
    with Ledger.open(state_dir) as ledger:
        ids = [r.id for r in ledger.usage_records(ICCID, 0)]
    assert ids[:100] == list(range(1, 101))  # the backup's rows
    assert ids[-1] == 500  # the newest, past the unreadable page
    assert 100 < len(ids) < 500  # what was on that page is lost
    assert outcome.salvaged["usage"] == len(ids) - 100


def test_without_a_backup_a_fresh_ledger_is_held_for_the_operator(
    state_dir: Path, backup_dir: Path
) -> None:
    _book(state_dir, 0, 10)
    with (state_dir / LEDGER_FILE).open("r+b") as f:
        f.write(b"garbage" * 14)
    outcome = recover(state_dir, backup_dir, T0)
    assert outcome.corrupt
    assert outcome.restored_from is None
    assert outcome.salvaged == {}
    with Ledger.open(state_dir) as ledger:
        assert ledger.usage_records(ICCID, 0) == []
        record = recovery_pending(ledger)
    assert record is not None
    assert record["restored_from"] is None
    assert "not a database" in record["check"]


def test_without_a_backup_what_is_readable_is_salvaged_into_a_fresh_ledger(
    state_dir: Path, backup_dir: Path
) -> None:
    _book(state_dir, 0, 40)
    with Ledger.open(state_dir, durable=False) as ledger:
        ledger.put_setting("traffic", {"paused": True}, T0 + 50)
    _corrupt_index(state_dir / LEDGER_FILE)
    outcome = recover(state_dir, backup_dir, T0 + 1000)
    assert outcome.corrupt
    assert outcome.restored_from is None
    assert outcome.salvaged["usage"] == 40
    with Ledger.open(state_dir) as ledger:
        assert len(ledger.usage_records(ICCID, 0)) == 40
        assert ledger.get_setting("traffic") == {"paused": True}
        assert recovery_pending(ledger) is not None  # held all the same


def test_a_lost_ledger_with_a_backup_is_restored_and_held(
    state_dir: Path, backup_dir: Path
) -> None:
    _book(state_dir, 0, 7)
    make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0 + 100)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{state_dir / LEDGER_FILE}{suffix}").unlink(missing_ok=True)
    (state_dir / SECRET_FILE).unlink()  # the state directory lost everything
    outcome = recover(state_dir, backup_dir, T0 + 1000)
    assert outcome.acted and not outcome.corrupt
    assert outcome.moved_to is None
    assert (state_dir / SECRET_FILE).read_bytes() == (backup_dir / SECRET_FILE).read_bytes()
    with Ledger.open(state_dir) as ledger:
        assert len(ledger.usage_records(ICCID, 0)) == 7
        assert recovery_pending(ledger) is not None
        # The destination hashes still match: the secret came back with the ledger.
        assert ledger.destination_calls(ledger.hasher.hash("+15550101"), 0) == 7


def test_an_operator_restore_salvages_the_rows_only_in_the_wal(
    state_dir: Path, backup_dir: Path
) -> None:
    _book(state_dir, 0, 10)
    make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0 + 100)
    _crash_after_booking(state_dir, 5)  # 5 more, only in the WAL of a killed process
    backup = latest_good_backup(backup_dir)
    assert backup is not None
    outcome = restore(state_dir, backup, backup_dir, T0 + 1000)
    assert outcome.moved_to is not None
    assert Path(f"{outcome.moved_to}-wal").exists()
    assert outcome.salvaged["usage"] == 5
    with Ledger.open(state_dir) as ledger:
        assert len(ledger.usage_records(ICCID, 0)) == 15
        assert recovery_pending(ledger) is None  # the operator did it on purpose
        record = ledger.get_setting(RECOVERY_KEY)
    assert record is not None
    assert (record["confirmed"], record["reason"]) == (True, "operator_restore")


def test_restore_without_salvage_is_the_backup_as_it_was(state_dir: Path, backup_dir: Path) -> None:
    _book(state_dir, 0, 10)
    backup = make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0 + 100)
    _book(state_dir, 10, 5)
    outcome = restore(state_dir, backup, backup_dir, T0 + 1000, salvage_rows=False)
    assert outcome.salvaged == {}
    with Ledger.open(state_dir) as ledger:
        assert len(ledger.usage_records(ICCID, 0)) == 10


def test_a_process_with_the_ledger_open_is_found(state_dir: Path, backup_dir: Path) -> None:
    _book(state_dir, 0, 3)
    backup = make_backup(state_dir / LEDGER_FILE, backup_dir, keep=3, now=T0)
    assert ledger_holder(state_dir / LEDGER_FILE) is None
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD.format(state=str(state_dir))],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        assert ledger_holder(state_dir / LEDGER_FILE) == holder.pid
        with pytest.raises(LedgerInUse) as refused:
            restore(state_dir, backup, backup_dir, T0 + 1)
        assert refused.value.pid == holder.pid
        assert (state_dir / LEDGER_FILE).exists()
        assert not (state_dir / CORRUPT_DIR).exists()
    finally:
        holder.communicate("")
    assert ledger_holder(state_dir / LEDGER_FILE) is None
    assert ledger_holder(state_dir / "nothing.sqlite3") is None


def test_the_state_directory_lock_is_held_once(state_dir: Path) -> None:
    with lock_state_dir(state_dir) as path:
        assert path.read_text().strip() == str(os.getpid())
        with (
            pytest.raises(LedgerInUse, match="held by process") as refused,
            lock_state_dir(state_dir),
        ):
            pass
        assert refused.value.pid == os.getpid()
    with lock_state_dir(state_dir):  # released at the end of the block
        pass


_HOLD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from simbank.store.ledger import Ledger
    ledger = Ledger.open(Path({state!r}), durable=False)
    print("open", flush=True)
    sys.stdin.read()
    ledger.close()
    """
)


def _crash_after_booking(state_dir: Path, count: int) -> None:
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from simbank.store.ledger import Ledger
        ledger = Ledger.open(Path({str(state_dir)!r}))
        first = len(ledger.usage_records({ICCID!r}, 0))
        for n in range({count}):
            ledger.book({ICCID!r}, "sms", {T0} + 500 + first + n)
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
