"""The ledger against real SQLite files: durability, permissions, migrations, privacy."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from simbank.bank.usage import UsageKind, summarise
from simbank.errors import ConfigError, LedgerError
from simbank.store.dnc import DoNotCallList
from simbank.store.ledger import LEDGER_FILE, Ledger
from simbank.store.schema import MIGRATIONS, SCHEMA_VERSION, connect, migrate, schema_version
from simbank.store.secret import SECRET_FILE, DestinationHasher, normalise_number

ICCID = "89860012345678901234"
T0 = 1_780_000_000.0
NUMBER = "+86 138-0013-8000"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def ledger(state_dir: Path) -> Iterator[Ledger]:
    opened = Ledger.open(state_dir)
    yield opened
    opened.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_open_creates_private_files_in_wal_mode_at_the_current_schema(
    ledger: Ledger, state_dir: Path
) -> None:
    ledger.book(ICCID, UsageKind.SMS, T0)
    assert mode(state_dir) == 0o700
    assert mode(state_dir / LEDGER_FILE) == 0o600
    assert mode(state_dir / SECRET_FILE) == 0o600
    assert mode(state_dir / f"{LEDGER_FILE}-wal") & 0o077 == 0
    raw = sqlite3.connect(state_dir / LEDGER_FILE)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        raw.close()
    assert ledger._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_migrations_are_idempotent(state_dir: Path) -> None:
    Ledger.open(state_dir).close()
    conn = connect(state_dir / LEDGER_FILE)
    try:
        assert migrate(conn) == 0
        assert schema_version(conn) == SCHEMA_VERSION
    finally:
        conn.close()
    with Ledger.open(state_dir) as again:
        assert again.usage_records(ICCID, 0) == []


def test_migrate_applies_every_step_to_an_empty_file(tmp_path: Path) -> None:
    conn = connect(tmp_path / "empty.sqlite3")
    try:
        assert migrate(conn) == SCHEMA_VERSION
        assert migrate(conn) == 0
    finally:
        conn.close()


def test_an_older_file_is_upgraded_keeping_its_rows(state_dir: Path) -> None:
    state_dir.mkdir(mode=0o700)
    raw = sqlite3.connect(state_dir / LEDGER_FILE)
    for statement in MIGRATIONS[0]:
        raw.execute(statement)
    raw.execute(
        "INSERT INTO usage (iccid, kind, booked_at, reserved_s) VALUES (?, 'call', ?, 90)",
        (ICCID, T0),
    )
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    with Ledger.open(state_dir) as ledger:
        assert schema_version(ledger._conn) == SCHEMA_VERSION
        (record,) = ledger.usage_records(ICCID, 0)
        assert (record.booked_at, record.charged_s) == (T0, 90)
        ledger.put_setting("circuit", {"opened_at": None, "blocks": []}, T0)


def test_settings_survive_a_restart(state_dir: Path) -> None:
    with Ledger.open(state_dir) as ledger:
        assert ledger.get_setting("pause") is None
        ledger.put_setting("pause", {"paused": True, "reason": "carrier audit"}, T0)
        ledger.put_setting("pause", {"paused": True, "reason": "operator"}, T0 + 1)
    with Ledger.open(state_dir) as ledger:
        assert ledger.get_setting("pause") == {"paused": True, "reason": "operator"}


def test_a_newer_schema_is_refused(state_dir: Path) -> None:
    Ledger.open(state_dir).close()
    raw = sqlite3.connect(state_dir / LEDGER_FILE)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(LedgerError, match="newer"):
        Ledger.open(state_dir)


def test_secret_is_created_once_and_reused(state_dir: Path) -> None:
    with Ledger.open(state_dir) as first:
        digest = first.hasher.hash(NUMBER)
    secret = (state_dir / SECRET_FILE).read_bytes()
    with Ledger.open(state_dir) as second:
        assert second.hasher.hash(NUMBER) == digest
    assert (state_dir / SECRET_FILE).read_bytes() == secret
    assert len(bytes.fromhex(secret.decode().strip())) == 32


def test_a_world_readable_secret_is_tightened(state_dir: Path) -> None:
    Ledger.open(state_dir).close()
    (state_dir / SECRET_FILE).chmod(0o644)
    Ledger.open(state_dir).close()
    assert mode(state_dir / SECRET_FILE) == 0o600


def test_a_booking_survives_closing_without_complete_and_counts_as_used(state_dir: Path) -> None:
    with Ledger.open(state_dir) as ledger:
        booking = ledger.book(ICCID, UsageKind.CALL, T0, reserved_s=120, modem="m1")
    with Ledger.open(state_dir) as ledger:
        (record,) = ledger.usage_records(ICCID, T0 - 1)
    assert (record.id, record.completed, record.charged_s, record.modem) == (
        booking,
        False,
        120,
        "m1",
    )
    usage = summarise([record], T0 + 10, ZoneInfo("UTC"))
    assert (usage.calls_hour, usage.calls_day, usage.call_seconds_day) == (1, 1, 120)
    assert usage.last_call_end == T0 + 120


def test_a_booking_survives_kill_9(state_dir: Path) -> None:
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from simbank.store.ledger import Ledger\n"
        "from simbank.bank.usage import UsageKind\n"
        "ledger = Ledger.open(Path(sys.argv[1]))\n"
        f"booking = ledger.book({ICCID!r}, UsageKind.CALL, {T0}, reserved_s=60, destination='+8613800138000')\n"
        "print(booking, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(state_dir)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == -9
    with Ledger.open(state_dir) as ledger:
        (record,) = ledger.usage_records(ICCID, 0)
        assert record.id == int(done.stdout)
        assert not record.completed
        assert ledger.destination_calls(ledger.hasher.hash("008613800138000"), 0) == 1


def test_usage_follows_the_iccid_across_modems(ledger: Ledger) -> None:
    first = ledger.book(ICCID, UsageKind.CALL, T0, reserved_s=60, modem="m1")
    ledger.complete(first, T0 + 30, "answered", 25)
    ledger.book(ICCID, UsageKind.SMS, T0 + 100, modem="m2")
    ledger.book("89860000000000000009", UsageKind.SMS, T0 + 100, modem="m1")
    records = ledger.usage_records(ICCID, T0 - 1)
    assert [(r.kind, r.modem, r.outcome, r.charged_s) for r in records] == [
        (UsageKind.CALL, "m1", "answered", 25),
        (UsageKind.SMS, "m2", None, 0),
    ]
    assert ledger.usage_records(ICCID, T0 + 50)[0].kind is UsageKind.SMS


def test_usage_is_append_only(ledger: Ledger) -> None:
    booking = ledger.book(ICCID, UsageKind.CALL, T0, reserved_s=60)
    ledger.complete(booking, T0 + 60, "answered", 50)
    with pytest.raises(LedgerError, match="already completed"):
        ledger.complete(booking, T0 + 70, "answered", 1)
    with pytest.raises(LedgerError, match="no booking"):
        ledger.complete(booking + 1, T0, "answered")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        ledger._conn.execute("DELETE FROM usage")
    with pytest.raises(sqlite3.IntegrityError, match="completed once"):
        ledger._conn.execute("UPDATE usage SET duration_s = 0")
    assert ledger.usage_records(ICCID, 0)[0].duration_s == 50


def test_destination_is_never_stored_in_clear(ledger: Ledger, state_dir: Path) -> None:
    for n in range(20):
        ledger.book(ICCID, UsageKind.CALL, T0 + n, reserved_s=60, destination=NUMBER)
    ledger.book(ICCID, UsageKind.SMS, T0, destination="0086 138 0013 8000")
    ledger.close()
    blob = b"".join(p.read_bytes() for p in state_dir.iterdir())
    for needle in (
        b"13800138000",
        b"138-0013-8000",
        b"138 0013 8000",
        "13800138000".encode("utf-16-le"),
    ):
        assert needle not in blob
    with Ledger.open(state_dir) as again:
        digest = again.hasher.hash("+8613800138000")
        assert (
            digest.encode()
            in (state_dir / LEDGER_FILE).read_bytes()
            + (state_dir / f"{LEDGER_FILE}-wal").read_bytes()
        )
        assert again.destination_calls(digest, T0) == 20  # calls only, gateway-wide
        assert again.destination_calls(digest, T0 + 10) == 10


def test_two_ledgers_on_one_file_interleave_safely(state_dir: Path) -> None:
    a, b = Ledger.open(state_dir), Ledger.open(state_dir)
    ids: list[int] = []
    lock = threading.Lock()

    def work(ledger: Ledger, iccid: str) -> None:
        for n in range(100):
            booking = ledger.book(iccid, UsageKind.CALL, T0 + n, reserved_s=10)
            ledger.complete(booking, T0 + n + 5, "answered", 5)
            with lock:
                ids.append(booking)

    threads = [
        threading.Thread(target=work, args=(led, f"8986{k}")) for k, led in enumerate((a, b, a))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 300
    assert len(b.usage_records("89860", 0)) == 100
    assert all(r.completed for r in a.usage_records("89862", 0))
    a.close()
    b.close()


@pytest.mark.parametrize("round_", range(10))
def test_racing_first_opens_agree_on_one_secret_and_schema(state_dir: Path, round_: int) -> None:
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def open_one() -> None:
        start.wait()
        try:
            with Ledger.open(state_dir) as ledger:
                results.append(ledger.hasher.hash(NUMBER))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 8
    assert len(set(results)) == 1


def test_sim_state_since_moves_only_on_change(ledger: Ledger) -> None:
    ledger.set_sim_state(ICCID, "available", T0)
    ledger.set_sim_state(ICCID, "available", T0 + 50, note="seen again")
    assert ledger.sim_states()[ICCID].since == T0
    ledger.set_sim_state(ICCID, "blocked", T0 + 100, reason="calls_barred")
    record = ledger.sim_states()[ICCID]
    assert (record.state, record.reason, record.since, record.note) == (
        "blocked",
        "calls_barred",
        T0 + 100,
        None,
    )


def test_evidence_and_audit_trail(ledger: Ledger) -> None:
    ledger.add_evidence(ICCID, T0, "registration_denied", {"stat": 3, "cause": 7})
    ledger.add_evidence(ICCID, T0 + 10, "call_failed", {"cause": 8})
    ledger.add_evidence("other", T0, "call_failed", {"cause": 8})
    assert [e.kind for e in ledger.evidence(ICCID)] == ["registration_denied", "call_failed"]
    assert ledger.evidence(ICCID, since=T0 + 5)[0].detail == {"cause": 8}
    ledger.audit(T0, "planner", "sim_rotated", {"iccid": ICCID, "modem": "m1", "slot": 2})
    ledger.audit(T0 + 1, "operator", "traffic/pause", {})
    assert [e.action for e in ledger.audit_trail()] == ["sim_rotated", "traffic/pause"]
    (entry,) = ledger.audit_trail(iccid=ICCID)
    assert (entry.actor, entry.detail["slot"]) == ("planner", 2)
    assert ledger.audit_trail(since=T0 + 1)[0].actor == "operator"


def test_inbound_sms_keeps_a_phone_number_sender_only_as_its_hash(
    ledger: Ledger, state_dir: Path
) -> None:
    first = ledger.store_inbound_sms(ICCID, T0, "+8613900000000", "your balance is 5", 3)
    ledger.store_inbound_sms("other", T0 + 1, "10086", "hello", None)
    ledger.store_inbound_sms("other", T0 + 2, "Vodafone", "welcome", None)
    (sms,) = ledger.inbound_sms(ICCID)
    assert (sms.id, sms.sender, sms.text, sms.modem_index) == (
        first,
        ledger.hasher.hash("+86 139 0000 0000"),  # the same keyed hash as a destination
        "your balance is 5",
        3,
    )
    # Short codes and names are the carrier's or a service's, not a person's: kept readable.
    assert [s.sender for s in ledger.inbound_sms("other")] == ["10086", "Vodafone"]
    ledger.close()
    stored = b"".join(p.read_bytes() for p in state_dir.iterdir() if p.is_file())
    assert b"8613900000000" not in stored


def _old_dedupe(iccid: str, sender: str, sent_at: str, index: int, text: str) -> str:
    """How schema 4 keyed an inbound SMS (an unkeyed hash over the sender in clear)."""
    key = "\x1f".join((iccid, sender, sent_at, str(index), text))
    return hashlib.sha256(key.encode()).hexdigest()


def test_senders_stored_before_schema_5_are_hashed_on_open(state_dir: Path) -> None:
    """An upgrade rewrites what schema 4 kept in clear, and a message stored then but still
    on the modem (the daemon died before deleting it) is recognised when listed again."""
    Ledger.open(state_dir).close()  # the secret, and a file to take back to schema 4
    path = state_dir / LEDGER_FILE
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    scts = "2026-11-28T21:00:00+00:00"
    conn = connect(path)
    try:
        for version, statements in enumerate(MIGRATIONS[:4]):
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute(
            "INSERT INTO inbound_sms (iccid, received_at, sender, text, modem_index, dedupe)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (ICCID, T0, "+15550100150", "hi", 1, _old_dedupe(ICCID, "+15550100150", scts, 1, "hi")),
        )
        conn.execute(
            "INSERT INTO inbound_sms (iccid, received_at, sender, text, modem_index)"
            " VALUES (?, ?, ?, ?, ?)",
            (ICCID, T0 + 1, "Vodafone", "welcome", 2),
        )
    finally:
        conn.close()
    with Ledger.open(state_dir) as ledger:
        assert [s.sender for s in ledger.inbound_sms(ICCID)] == [
            ledger.hasher.hash("+15550100150"),
            "Vodafone",
        ]
        assert (
            ledger.store_inbound_sms(ICCID, T0 + 60, "+15550100150", "hi", 1, sent_at=scts) is None
        )
        assert len(ledger.inbound_sms(ICCID)) == 2
    with Ledger.open(state_dir) as again:  # opening again changes nothing
        assert [s.sender for s in again.inbound_sms(ICCID)][1] == "Vodafone"
        assert again.inbound_sms(ICCID)[0].sender == again.hasher.hash("+15550100150")
    stored = b"".join(p.read_bytes() for p in state_dir.iterdir() if p.is_file())
    assert b"5550100150" not in stored


def test_the_first_response_to_a_transaction_is_kept(ledger: Ledger) -> None:
    assert ledger.find_response("call", "t1") is None
    ledger.remember_response("call", "t1", b'{"status":"ok"}', T0)
    ledger.remember_response("call", "t1", b'{"status":"error"}', T0 + 1)
    assert ledger.find_response("call", "t1") == b'{"status":"ok"}'
    assert ledger.find_response("sms/send", "t1") is None
    ledger.remember_response("status", "t2", b"{}", T0 + 8 * 86400)  # a week later: t1 forgotten
    assert ledger.find_response("call", "t1") is None


def test_an_inbound_sms_read_again_is_kept_once(ledger: Ledger) -> None:
    """Stored, then the daemon died before deleting it: the pickup after the restart lists
    it again (same SIM, sender, SMSC timestamp, index and text)."""
    scts = "2026-11-28T21:00:00+00:00"
    first = ledger.store_inbound_sms(ICCID, T0, "+15550100150", "hi", 1, sent_at=scts)
    assert first is not None
    assert ledger.store_inbound_sms(ICCID, T0 + 60, "+15550100150", "hi", 1, sent_at=scts) is None
    # Any difference is another message: a later one, another index, another SIM.
    assert ledger.store_inbound_sms(ICCID, T0, "+15550100150", "hi", 2, sent_at=scts)
    later = "2026-11-28T21:00:01+00:00"
    assert ledger.store_inbound_sms(ICCID, T0, "+15550100150", "hi", 1, sent_at=later)
    assert ledger.store_inbound_sms("other", T0, "+15550100150", "hi", 1, sent_at=scts)
    # Without a timestamp nothing identifies it: every report is kept.
    assert ledger.store_inbound_sms(ICCID, T0, "+15550100150", "hi", 1)
    assert ledger.store_inbound_sms(ICCID, T0, "+15550100150", "hi", 1)
    assert len(ledger.inbound_sms(ICCID)) == 5
    assert ledger.inbound_sms(ICCID)[0].id == first


def test_a_started_transaction_is_marked_until_its_response_is_stored(
    ledger: Ledger, state_dir: Path
) -> None:
    assert ledger.transaction_started("call", '"t1"') is None
    ledger.start_transaction("call", '"t1"', T0)
    ledger.start_transaction("call", '"t1"', T0 + 5)  # the first start is kept
    assert ledger.transaction_started("sms/send", '"t1"') is None
    # The mark is on disk at once: another process (the daemon after a crash) sees it.
    with Ledger.open(state_dir) as other:
        assert other.transaction_started("call", '"t1"') == T0
    ledger.remember_response("call", '"t1"', b'{"status":"ok"}', T0 + 9)
    assert ledger.transaction_started("call", '"t1"') is None
    assert ledger.find_response("call", '"t1"') == b'{"status":"ok"}'
    ledger.start_transaction("call", '"t2"', T0)
    ledger.remember_response("call", '"t3"', b"{}", T0 + 8 * 86400)  # a week on: t2 forgotten
    assert ledger.transaction_started("call", '"t2"') is None


def test_bookings_are_found_by_their_transaction(ledger: Ledger) -> None:
    booking = ledger.book(ICCID, UsageKind.CALL, T0, reserved_s=40, transaction='"t1"')
    ledger.book(ICCID, UsageKind.SMS, T0, transaction='"t2"')
    (record,) = ledger.bookings_for_transaction('"t1"')
    assert (record.id, record.completed, record.charged_s) == (booking, False, 40)
    assert ledger.bookings_for_transaction('"t9"') == []


@pytest.mark.parametrize(
    ("spelling", "digits"),
    [
        ("+86 138-0013-8000", "8613800138000"),
        ("0086 (138) 0013.8000", "8613800138000"),
        ("13800138000", "13800138000"),
    ],
)
def test_numbers_are_normalised_before_hashing(spelling: str, digits: str) -> None:
    assert normalise_number(spelling) == digits
    hasher = DestinationHasher(b"k" * 32)
    assert hasher.hash(spelling) == hasher.hash(digits)


@pytest.mark.parametrize("bad", ["", "+", "call me", "+86 138 0013 8000 1234", "١٢٣"])
def test_non_numbers_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="not a phone number"):
        normalise_number(bad)


def test_do_not_call_list_loads_hashes_reports_bad_lines_and_reloads(tmp_path: Path) -> None:
    hasher = DestinationHasher(b"s" * 32)
    path = tmp_path / "dnc.txt"
    path.write_text(
        "# numbers never to call\n+86 138 0013 8000\n\nnot-a-number\n0044 20 7946 0000  # office\n"
    )
    dnc = DoNotCallList.load(path, hasher)
    assert len(dnc) == 2
    assert dnc.contains("008613800138000")
    assert dnc.contains("+442079460000")
    assert not dnc.contains("+8613800138001")
    assert dnc.contains_hash(hasher.hash("8613800138000"))
    assert dnc.problems == (f"{path}:4: not an E.164 number, skipped",)
    path.write_text("+8613800138001\n")
    result = dnc.reload()
    assert (result.loaded, result.numbers) == (True, 1)
    assert dnc.contains("+8613800138001")
    assert not dnc.contains("+8613800138000")
    path.unlink()
    result = dnc.reload()
    assert not result.loaded
    assert dnc.contains("+8613800138001")  # a failed reload keeps the old list
    with pytest.raises(ConfigError):
        DoNotCallList.load(path, hasher)
    assert len(DoNotCallList.load(None, hasher)) == 0


def test_a_verdict_is_one_commit_with_all_its_evidence(tmp_path: Path) -> None:
    with Ledger.open(tmp_path) as ledger:
        ledger.record_verdict(
            "8999010000000000001",
            "blocked",
            1000.0,
            "reject_cause",
            [(990.0, "registration", {"stat": 3}), (1000.0, "reject_cause", {"cause": 7})],
        )
        record = ledger.sim_states()["8999010000000000001"]
        assert (record.state, record.reason, record.since) == ("blocked", "reject_cause", 1000.0)
        kinds = [e.kind for e in ledger.evidence("8999010000000000001")]
        assert kinds == ["registration", "reject_cause"]
