"""A corrupt ledger: found, moved aside (never deleted), replaced by the newest good backup
(or a fresh file), with what is still readable in it salvaged, and held for an operator.

:func:`recover` runs with no connection to the ledger open in the process (the daemon calls
it before :meth:`Ledger.open <simbank.store.ledger.Ledger.open>`, or after closing the ledger
on a corruption error). The restored ledger carries a ``ledger_recovery`` setting until an
operator confirms it (:func:`confirm_recovery`): until then the daemon stays ``degraded``,
so quotas never silently restart from what a backup or a fresh file says.

A running daemon is found by the lock SQLite itself holds: every open connection to a WAL
ledger keeps a read lock on the database file's shared-lock bytes (:func:`ledger_holder`),
and by the state directory's lock file when the daemon holds one (:func:`lock_state_dir`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog

from simbank.errors import LedgerError, StorageUnavailable
from simbank.store.backup import (
    BackupInfo,
    fsync_path,
    latest_good_backup,
    secret_backup,
    verify_backup,
    write_private,
)
from simbank.store.core import dump_json
from simbank.store.ledger import LEDGER_FILE, Ledger
from simbank.store.schema import BUSY_TIMEOUT_MS, connect, migrate
from simbank.store.secret import SECRET_FILE, ensure_private_dir

log = structlog.get_logger(__name__)

#: The settings key of the last recovery (a document; ``confirmed`` false until an operator
#: accepted it).
RECOVERY_KEY = "ledger_recovery"
CORRUPT_DIR = "corrupt"
LOCK_FILE = "simbankd.lock"
_SIDE_FILES = ("-wal", "-shm")
_STAMP = "%Y%m%dT%H%M%S%fZ"
#: SQLITE_CORRUPT and SQLITE_NOTADB (primary result codes)
_CORRUPT_CODES = frozenset({11, 26})
#: SQLite's unix locks on the database file: the shared-lock range above the pending byte.
_SHARED_FIRST, _SHARED_SIZE = 0x40000000 + 2, 510
_FLOCK = "@hhqqi"

LedgerStatus = Literal["ok", "corrupt", "absent", "unavailable"]


class LedgerInUse(LedgerError):
    """Another process has the ledger (or the state directory's lock): a running simbankd.
    ``pid`` is that process when known."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What SQLite's integrity check says of a ledger file. ``unavailable``: it could not be
    checked (locked, no permission, an I/O error) — not a sign of corruption."""

    path: Path
    status: LedgerStatus
    detail: str

    @property
    def corrupt(self) -> bool:
        return self.status == "corrupt"


@dataclass(frozen=True, slots=True)
class RecoveryOutcome:
    """What :func:`recover` (or :func:`restore`) did. ``moved_to``: the moved-aside ledger
    file (its ``-wal``/``-shm`` beside it); ``restored_from``: the backup put in place, or
    ``None`` when a fresh ledger was started; ``salvaged``: rows copied per table from the
    moved-aside file; ``record``: the ``ledger_recovery`` document stored on the ledger."""

    corrupt: bool
    report: IntegrityReport
    moved_to: Path | None = None
    restored_from: Path | None = None
    salvaged: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    record: Mapping[str, Any] | None = None

    @property
    def detail(self) -> str:
        """One line: what the check found, then the notes."""
        return "; ".join((f"ledger {self.report.status}: {self.report.detail}", *self.notes))

    @property
    def acted(self) -> bool:
        """Whether the ledger was replaced (corrupt, or absent with a backup to restore)."""
        return self.record is not None


def check_ledger(path: Path, *, quick: bool = False) -> IntegrityReport:
    """``PRAGMA integrity_check`` (``quick_check`` if ``quick``) of the ledger at ``path``.

    A file SQLite calls malformed or not a database is ``corrupt``; a missing one ``absent``.
    """
    if not path.exists():
        return IntegrityReport(path, "absent", "no ledger file")
    pragma = "quick_check" if quick else "integrity_check"
    try:
        # Read-only: closing it must not checkpoint a corrupt file's WAL into it (the file
        # moved aside stays as it was found).
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        return _failed(path, exc)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        problems = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}(10)")]
    except sqlite3.Error as exc:
        return _failed(path, exc)
    finally:
        conn.close()
    if problems == ["ok"]:
        return IntegrityReport(path, "ok", "ok")
    return IntegrityReport(path, "corrupt", _summary(problems))


def _summary(problems: list[str]) -> str:
    """The first few problems SQLite listed, on one line."""
    lines = [
        line.strip()
        for text in problems
        for line in text.splitlines()
        if line.strip() and not line.startswith("*** in database")
    ]
    more = f" (and {len(lines) - 3} more)" if len(lines) > 3 else ""
    return "; ".join(lines[:3]) + more


def _failed(path: Path, exc: sqlite3.Error) -> IntegrityReport:
    code = getattr(exc, "sqlite_errorcode", None)
    corrupt = isinstance(code, int) and code & 0xFF in _CORRUPT_CODES
    return IntegrityReport(path, "corrupt" if corrupt else "unavailable", str(exc))


def ledger_holder(path: Path) -> int | None:
    """The process id of another process with the SQLite file ``path`` open, else ``None``.

    Asks the kernel (``F_GETLK``, nothing is locked) who holds SQLite's shared lock. Only
    for a process that has no connection to ``path`` itself: closing the descriptor used
    here would drop that process's own SQLite locks on the file.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, _SHARED_FIRST, _SHARED_SIZE, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query + bytes(8))
        kind, _, _, _, pid = struct.unpack(_FLOCK, answer[: struct.calcsize(_FLOCK)])
    finally:
        os.close(fd)
    return None if kind == fcntl.F_UNLCK else int(pid)


@contextlib.contextmanager
def lock_state_dir(state_dir: Path) -> Iterator[Path]:
    """Hold ``<state_dir>/simbankd.lock`` (``flock``, our pid written in it) for the block;
    :class:`LedgerInUse` at once when another process holds it."""
    ensure_private_dir(state_dir)
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            pid = int(text) if text.isdigit() else None
            raise LedgerInUse(f"{path} is held by process {pid or '?'}", pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def move_aside(path: Path, now: float) -> Path:
    """Move the ledger at ``path`` and its ``-wal``/``-shm`` into
    ``<its directory>/corrupt/<UTC stamp>/`` (0700; never deleted); the moved ledger file."""
    target = _aside_dir(path.parent, now)
    for suffix in ("", *_SIDE_FILES):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").rename(target / f"{path.name}{suffix}")
    fsync_path(path.parent)
    fsync_path(target)
    log.warning("ledger_moved_aside", source=str(path), to=str(target))
    return target / path.name


def recover(
    state_dir: Path, backup_dir: Path, now: float, *, quick: bool = False
) -> RecoveryOutcome:
    """Check the ledger in ``state_dir``; if corrupt, move it aside, put the newest good
    backup in ``backup_dir`` in its place (or leave a fresh, empty ledger), salvage the
    moved file's readable rows newer than the backup, and record an unconfirmed
    ``ledger_recovery``. A ledger that is absent while a good backup exists is restored the
    same way (lost files must not restart the quotas). Quick (no change) when the check is ok.

    Raises :class:`LedgerInUse` when another process has the ledger open,
    :class:`StorageUnavailable` when the new ledger cannot be written.
    """
    path = state_dir / LEDGER_FILE
    report = check_ledger(path, quick=quick)
    if report.status in ("ok", "unavailable"):
        return RecoveryOutcome(corrupt=False, report=report)
    backup = latest_good_backup(backup_dir)
    if report.status == "absent" and backup is None:
        return RecoveryOutcome(corrupt=False, report=report)
    holder = ledger_holder(path)
    if holder is not None:
        raise LedgerInUse(f"{path} is open in process {holder}", holder)
    log.error("ledger_recovering", path=str(path), status=report.status, detail=report.detail)
    return _replace(
        state_dir, backup, backup_dir, now, report=report, salvage_rows=True, confirmed_by=None
    )


def restore(
    state_dir: Path,
    backup: BackupInfo,
    backup_dir: Path,
    now: float,
    *,
    salvage_rows: bool = True,
    actor: str = "simbankd restore",
) -> RecoveryOutcome:
    """An operator's restore (the daemon stopped): move the ledger aside (if there is one),
    put ``backup`` in place, salvage newer readable rows unless told not to, and record the
    recovery as confirmed by ``actor``. Raises :class:`LedgerInUse` if the ledger is open."""
    path = state_dir / LEDGER_FILE
    holder = ledger_holder(path)
    if holder is not None:
        raise LedgerInUse(f"{path} is open in process {holder}", holder)
    report = check_ledger(path)
    return _replace(
        state_dir,
        backup,
        backup_dir,
        now,
        report=report,
        salvage_rows=salvage_rows,
        confirmed_by=actor,
    )


def recovery_pending(ledger: Ledger) -> dict[str, Any] | None:
    """The recorded recovery no operator has confirmed yet, if any."""
    record = ledger.get_setting(RECOVERY_KEY)
    return record if record is not None and not record.get("confirmed") else None


def confirm_recovery(
    ledger: Ledger, now: float, actor: str, note: str | None = None
) -> dict[str, Any] | None:
    """Accept the recorded recovery (audited); the document, ``None`` when no recovery was
    ever recorded. Confirming one already confirmed changes nothing."""
    record = ledger.get_setting(RECOVERY_KEY)
    if record is None or record.get("confirmed"):
        return record
    record.update(confirmed=True, confirmed_at=now, confirmed_by=actor)
    if note:
        record["note"] = note
    ledger.put_setting(RECOVERY_KEY, record, now)
    ledger.audit(now, actor, "ledger_recovery_confirmed", dict(record))
    log.warning("ledger_recovery_confirmed", actor=actor)
    return record


# -- replacing the ledger ---------------------------------------------------------------------


def _replace(
    state_dir: Path,
    backup: BackupInfo | None,
    backup_dir: Path,
    now: float,
    *,
    report: IntegrityReport,
    salvage_rows: bool,
    confirmed_by: str | None,
) -> RecoveryOutcome:
    """Build the new ledger under a temporary name (the backup or an empty file, migrated,
    the salvage and the recovery record in one commit), then move the old one aside and
    rename the new one into place: a crash at any point leaves either the old ledger or,
    at worst, none (then the next start restores the backup again, held the same way)."""
    path = state_dir / LEDGER_FILE
    temp = path.with_name(f".{path.name}.restore-{os.getpid()}.tmp")
    present = report.status != "absent"
    try:
        aside = _aside_dir(state_dir, now) if present else None
    except OSError as exc:
        raise StorageUnavailable(f"cannot keep the old ledger aside: {exc}") from exc
    moved = None if aside is None else aside / path.name
    record: dict[str, Any] = {
        "at": now,
        "reason": report.status if confirmed_by is None else "operator_restore",
        "ledger_was": report.status,
        "check": report.detail[:500],
        "moved_to": None if moved is None else str(moved),
        "restored_from": None if backup is None else str(backup.path),
        "backup_created_at": None if backup is None else backup.created_at,
        "confirmed": confirmed_by is not None,
    }
    if confirmed_by is not None:
        record.update(confirmed_at=now, confirmed_by=confirmed_by)
    notes: list[str] = []
    moved_old = placed = False
    try:
        _prepare(temp, None if backup is None else backup.path)
        counts, problems = _fill(
            temp,
            path if present and salvage_rows else None,
            record,
            now,
            confirmed_by,
            fresh=backup is None,
        )
        notes += problems
        # Everything that may fail comes before the old ledger is moved: once it is, only the
        # rename into place is left.
        if backup is not None:
            notes += _restore_secret(backup_dir, state_dir, aside, now)
        if aside is not None:
            moved_old = True
            for suffix in ("", *_SIDE_FILES):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").rename(aside / f"{path.name}{suffix}")
            fsync_path(aside)
        temp.rename(path)
        placed = True
        fsync_path(state_dir)
    except OSError as exc:
        raise StorageUnavailable(f"cannot replace the ledger {path}: {exc.strerror}") from exc
    finally:
        if placed or not moved_old:
            for extra in ("", "-journal", "-wal", "-shm"):
                Path(f"{temp}{extra}").unlink(missing_ok=True)
        else:  # the old one is aside and the new one not in place: keep it for the operator
            log.error("restored_ledger_left_at", path=str(temp), target=str(path))
    outcome = RecoveryOutcome(
        corrupt=report.corrupt,
        report=report,
        moved_to=moved,
        restored_from=None if backup is None else backup.path,
        salvaged=counts,
        notes=tuple(notes),
        record=record,
    )
    log.warning(
        "ledger_replaced",
        moved_to=record["moved_to"],
        restored_from=record["restored_from"],
        salvaged=counts,
        detail=outcome.detail,
    )
    return outcome


def _aside_dir(state_dir: Path, now: float) -> Path:
    """A new ``<state_dir>/corrupt/<UTC stamp>[-n]/`` (0700)."""
    parent = state_dir / CORRUPT_DIR
    ensure_private_dir(parent)
    stamp = datetime.fromtimestamp(now, UTC).strftime(_STAMP)
    for n in range(1000):
        target = parent / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            target.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return target
    raise LedgerError(f"{parent}: no free name for {stamp}")


def _prepare(temp: Path, backup: Path | None) -> None:
    """``temp`` (0600): a verified copy of ``backup``, or empty."""
    for extra in ("", "-journal", "-wal", "-shm"):
        Path(f"{temp}{extra}").unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        if backup is not None:
            with backup.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
    if backup is not None:
        verify_backup(temp)  # the copy, read back
    fsync_path(temp.parent)


def _fill(
    temp: Path,
    source: Path | None,
    record: dict[str, Any],
    now: float,
    actor: str | None,
    *,
    fresh: bool,
) -> tuple[dict[str, int], list[str]]:
    """Migrate ``temp``, salvage ``source`` into it and store ``record``, in one commit; leave
    it one self-contained file (journal mode DELETE)."""
    conn = connect(temp)
    try:
        migrate(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            counts, problems = (
                ({}, []) if source is None else salvage_into(source, conn, fresh=fresh)
            )
            record["salvaged"] = counts
            conn.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key)"
                " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (RECOVERY_KEY, dump_json(record), now),
            )
            conn.execute(
                "INSERT INTO audit (at, actor, action, iccid, detail) VALUES (?, ?, ?, NULL, ?)",
                (now, actor or "simbankd", "ledger_restored", dump_json(record)),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        mode = str(conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]).lower()
        if mode != "delete":  # the rename below moves one file: nothing may stay in a WAL
            raise StorageUnavailable(f"{temp}: cannot leave WAL mode ({mode})")
    except sqlite3.Error as exc:
        raise StorageUnavailable(f"cannot write the restored ledger: {exc}") from exc
    finally:
        conn.close()
    return counts, problems


def _restore_secret(backup_dir: Path, state_dir: Path, aside: Path | None, now: float) -> list[str]:
    """Put the secret kept beside the backups in the state directory when it is missing or
    differs: the restored ledger's hashes are keyed by it (the one replaced is moved aside)."""
    kept = secret_backup(backup_dir)
    if not kept.is_file():
        return ["no secret beside the backups: destination hashes may not match"]
    wanted = kept.read_bytes()
    current = state_dir / SECRET_FILE
    if current.is_file():
        if current.read_bytes() == wanted:
            return []
        current.rename((aside or _aside_dir(state_dir, now)) / SECRET_FILE)
    write_private(current, wanted)
    return ["the install secret was restored from the backups"]


# -- salvage ----------------------------------------------------------------------------------

#: How each table's readable rows are taken from a corrupt ledger into the restored one:
#: ``append`` the rows past the restored table's last id (ids kept: a PBX may still hold a
#: booking id), ``replace`` (the corrupt file had the latest value), ``add`` (when missing).
#: ``fresh``: only into a fresh ledger (no backup): the retention fold's daily totals, which a
#: backup taken before a fold holds as the raw rows (copying both would count them twice).
#: Tables not listed are left to the backup.
SALVAGE_TABLES: tuple[tuple[str, Literal["append", "replace", "add", "fresh"]], ...] = (
    ("usage", "append"),
    ("evidence", "append"),
    ("audit", "append"),
    ("inbound_sms", "append"),
    ("sms_sent", "append"),
    ("inbound_calls", "append"),
    ("sim_state", "replace"),
    ("sim_balance", "replace"),
    ("settings", "replace"),
    ("transactions", "add"),
    ("responses", "add"),
    ("sms_parts", "add"),
    ("usage_daily", "fresh"),
    ("event_daily", "fresh"),
)
#: A scan gives up after this many unreadable places in one table.
_MAX_GAPS = 200
_FIRST_ROWID = -(2**63)


def salvage_into(
    source: Path, conn: sqlite3.Connection, *, fresh: bool = False
) -> tuple[dict[str, int], list[str]]:
    """Copy what can still be read from the (corrupt) ledger file ``source`` into ``conn``
    (in its open transaction), as :data:`SALVAGE_TABLES` says (``fresh``: ``conn`` is a new,
    empty ledger, not a backup), and complete the bookings the source saw completed. Best
    effort: unreadable pages are skipped; rows per table, notes. An error writing ``conn``
    propagates."""
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return {}, [f"nothing salvaged: {exc}"]
    try:
        src.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        src.close()
        return {}, [f"nothing salvaged: {exc}"]
    counts: dict[str, int] = {}
    notes: list[str] = []
    try:
        for table, how in SALVAGE_TABLES:
            columns = _shared_columns(src, conn, table)
            if not columns or (how == "fresh" and not fresh):
                continue
            after = _FIRST_ROWID
            if how == "append":
                last = conn.execute(f'SELECT MAX(rowid) FROM "{table}"').fetchone()[0]  # noqa: S608
                after = _FIRST_ROWID if last is None else int(last)
            verb = "INSERT OR REPLACE" if how == "replace" else "INSERT OR IGNORE"
            insert = (
                f'{verb} INTO "{table}" ({", ".join(columns)})'
                f" VALUES ({', '.join('?' * len(columns))})"
            )
            copied, gaps, unreadable = 0, 0, [0]
            rows = (
                _all_rows(src, table, columns, unreadable)
                if how == "fresh"
                else _readable_rows(src, table, columns, after, unreadable)
            )
            for row in rows:
                if table == "settings" and row[columns.index("key")] == RECOVERY_KEY:
                    continue
                try:
                    copied += conn.execute(insert, row).rowcount
                except sqlite3.IntegrityError:
                    gaps += 1  # a garbled row the schema rejects
            gaps += unreadable[0]
            if copied:
                counts[table] = copied
            if gaps:
                notes.append(f"{table}: {gaps} unreadable or rejected place(s) skipped")
        completed = _complete_bookings(src, conn)
        if completed:
            counts["usage_completed"] = completed
    finally:
        src.close()
    return counts, notes


def _shared_columns(src: sqlite3.Connection, conn: sqlite3.Connection, table: str) -> list[str]:
    """The columns ``table`` has in both files (none when the source cannot say)."""
    try:
        theirs = {str(r[1]) for r in src.execute(f'PRAGMA table_info("{table}")')}
    except sqlite3.DatabaseError:
        return []
    return [str(r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")') if r[1] in theirs]


def _readable_rows(
    src: sqlite3.Connection, table: str, columns: list[str], after: int, gaps: list[int]
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``table`` past rowid ``after`` that can be read, in rowid order; an
    unreadable stretch is jumped over (1, 2, 4... rowids on) and counted in ``gaps[0]``."""
    sql = (
        f'SELECT rowid, {", ".join(columns)} FROM "{table}"'  # noqa: S608 - names from the schema
        " WHERE rowid > ? ORDER BY rowid"
    )
    position, jump = after, 1
    while gaps[0] < _MAX_GAPS:
        try:
            for row in src.execute(sql, (position,)):
                position, jump = int(row[0]), 1
                yield tuple(row[1:])
        except sqlite3.DatabaseError:
            gaps[0] += 1
            position, jump = position + jump, jump * 2
            if jump > 2**40:
                return
            continue
        return


def _all_rows(
    src: sqlite3.Connection, table: str, columns: list[str], gaps: list[int]
) -> Iterator[tuple[Any, ...]]:
    """Every row of ``table`` (no rowid: ``WITHOUT ROWID``) up to the first unreadable page."""
    try:
        for row in src.execute(f'SELECT {", ".join(columns)} FROM "{table}"'):  # noqa: S608
            yield tuple(row)
    except sqlite3.DatabaseError:
        gaps[0] += 1


def _complete_bookings(src: sqlite3.Connection, conn: sqlite3.Connection) -> int:
    """Bookings open in the restored ledger that the source saw completed: completed."""
    done = 0
    for booking, iccid, booked_at in conn.execute(
        "SELECT id, iccid, booked_at FROM usage WHERE completed_at IS NULL"
    ).fetchall():
        try:
            found = src.execute(
                "SELECT iccid, booked_at, completed_at, outcome, duration_s FROM usage"
                " WHERE id = ?",
                (booking,),
            ).fetchone()
        except sqlite3.DatabaseError:
            continue
        if found is None or found[2] is None or (found[0], found[1]) != (iccid, booked_at):
            continue
        try:
            conn.execute(
                "UPDATE usage SET completed_at = ?, outcome = ?, duration_s = ? WHERE id = ?",
                (found[2], found[3], found[4], booking),
            )
        except sqlite3.IntegrityError:
            continue
        done += 1
    return done
