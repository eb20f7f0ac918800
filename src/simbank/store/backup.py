"""Verified backups of the ledger with SQLite's online backup API, kept N deep.

A backup is taken over a connection of its own, so it runs while the daemon books (WAL: the
copy is one consistent snapshot, writers are not held up). It is written under a temporary
name in the backup directory (0700, files 0600), made a single self-contained file (journal
mode DELETE), fsynced, checked (``PRAGMA integrity_check`` and the schema version), and only
then given its final name, ``ledger-<UTC YYYYmmddTHHMMSSffffffZ>.sqlite3``: a file with that
name was verified when it was written, and a failure leaves nothing behind.

The install's secret is kept beside the backups (``secret``, 0600): the destinations in a
ledger are keyed hashes under it, so a ledger restored without it would no longer match them.

Calls block (SQLite, fsync): the daemon runs them in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import structlog

from simbank.errors import LedgerError
from simbank.store.schema import BUSY_TIMEOUT_MS
from simbank.store.secret import SECRET_FILE, ensure_private_dir

log = structlog.get_logger(__name__)

_PREFIX, _SUFFIX = "ledger-", ".sqlite3"
_STAMP = "%Y%m%dT%H%M%S%fZ"
_NAME = re.compile(r"^ledger-(\d{8}T\d{12}Z)\.sqlite3$")
_TEMP_PREFIX = ".ledger-"
#: A temporary file older than this was left by a backup that died (a crash, a kill).
_STALE_TEMP_S = 3600.0


class BackupFailed(LedgerError):
    """A backup could not be written or verified (the backup directory full or read-only,
    the ledger unreadable, the copy failing its check), or a backup file is not a good one.
    Nothing was left behind; the ledger itself is untouched. ``code`` is the OS errno when
    there was one."""


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """One backup file. ``schema_version``, ``usage_rows`` and ``newest_usage_at`` are read
    from the file when it is verified, ``None`` when it was only listed."""

    path: Path
    size_bytes: int
    created_at: float
    schema_version: int | None = None
    usage_rows: int | None = None
    newest_usage_at: float | None = None

    def to_data(self) -> dict[str, object]:
        """The answer's ``data`` (``storage/backup``): the path as text, times in ISO 8601."""
        return {
            "path": str(self.path),
            "name": self.path.name,
            "size_bytes": self.size_bytes,
            "created_at": _iso(self.created_at),
            "schema_version": self.schema_version,
            "usage_rows": self.usage_rows,
            "newest_usage_at": None if self.newest_usage_at is None else _iso(self.newest_usage_at),
        }


def backup_name(now: float) -> str:
    """The file name of a backup taken at ``now`` (epoch seconds)."""
    return f"{_PREFIX}{datetime.fromtimestamp(now, UTC).strftime(_STAMP)}{_SUFFIX}"


def backup_time(name: str) -> float | None:
    """When the backup called ``name`` was taken; ``None`` for any other file name."""
    match = _NAME.match(name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC).timestamp()


def make_backup(source: Path, backup_dir: Path, keep: int, now: float) -> BackupInfo:
    """Back ``source`` (the ledger file) up into ``backup_dir`` and keep the newest ``keep``.

    Also keeps a copy of the install's secret (``<source's directory>/secret``) there. Raises
    :class:`BackupFailed` (nothing left behind) when the copy cannot be written or checked.
    """
    if keep < 1:
        raise ValueError("keep at least one backup")
    if not source.is_file():
        raise BackupFailed(f"no ledger at {source}")
    try:
        ensure_private_dir(backup_dir)
    except OSError as exc:
        raise BackupFailed(f"{backup_dir}: {exc.strerror}", code=exc.errno) from exc
    temp = backup_dir / f"{_TEMP_PREFIX}{os.getpid()}-{now:.6f}.tmp"
    try:
        _copy(source, temp)
        info = verify_backup(temp)
        final = _publish(temp, backup_dir, now)
    except BaseException:
        _remove(temp)
        raise
    _keep_secret(source.parent / SECRET_FILE, backup_dir, now)
    removed = prune_backups(backup_dir, keep, now)
    info = replace(info, path=final, created_at=backup_time(final.name) or now)
    log.info(
        "ledger_backed_up",
        path=str(final),
        size_bytes=info.size_bytes,
        usage_rows=info.usage_rows,
        pruned=len(removed),
    )
    return info


def list_backups(backup_dir: Path) -> list[BackupInfo]:
    """The backups in ``backup_dir`` (by name: verified when written), newest first; not
    opened (read facts with :func:`verify_backup`)."""
    found = []
    try:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(backup_dir):
                created = backup_time(entry.name)
                if created is None or not entry.is_file(follow_symlinks=False):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    found.append(BackupInfo(Path(entry.path), entry.stat().st_size, created))
    except OSError as exc:  # not a directory, no permission, a stale network mount
        raise BackupFailed(f"{backup_dir}: {exc.strerror}", code=exc.errno) from exc
    return sorted(found, key=lambda info: info.path.name, reverse=True)


def verify_backup(path: Path) -> BackupInfo:
    """Check a backup file (read-only, nothing written beside it): ``integrity_check`` ok and
    a ledger schema; its facts. Raises :class:`BackupFailed` saying what is wrong."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BackupFailed(f"{path}: {exc.strerror}", code=exc.errno) from exc
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise BackupFailed(f"{path}: cannot open: {exc}") from exc
    try:
        problems = [str(row[0]) for row in conn.execute("PRAGMA integrity_check(5)")]
        if problems != ["ok"]:
            raise BackupFailed(f"{path}: integrity check failed: {'; '.join(problems)}")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version < 1:
            raise BackupFailed(f"{path}: not a ledger (no schema)")
        rows, newest = conn.execute("SELECT COUNT(*), MAX(booked_at) FROM usage").fetchone()
    except sqlite3.Error as exc:
        raise BackupFailed(f"{path}: unreadable: {exc}") from exc
    finally:
        conn.close()
    created = backup_time(path.name)
    return BackupInfo(
        path,
        size,
        path.stat().st_mtime if created is None else created,
        version,
        int(rows),
        None if newest is None else float(newest),
    )


def latest_good_backup(backup_dir: Path) -> BackupInfo | None:
    """The newest backup that passes :func:`verify_backup` (bad ones are logged, skipped)."""
    for listed in list_backups(backup_dir):
        try:
            return verify_backup(listed.path)
        except BackupFailed as exc:
            log.warning("backup_skipped", path=str(listed.path), error=str(exc))
    return None


def prune_backups(backup_dir: Path, keep: int, now: float) -> list[Path]:
    """Remove all but the newest ``keep`` backups, and temporary files a dead backup left
    behind; returns what was removed."""
    removed = [info.path for info in list_backups(backup_dir)[keep:]]
    with contextlib.suppress(OSError):
        for entry in os.scandir(backup_dir):
            if entry.name.startswith(_TEMP_PREFIX) and ".tmp" in entry.name:
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < now - _STALE_TEMP_S:
                        removed.append(Path(entry.path))
    gone = []
    for path in removed:
        try:
            path.unlink()
        except FileNotFoundError:
            gone.append(path)
        except OSError as exc:  # kept: one more backup than asked is no harm
            log.warning("backup_not_pruned", path=str(path), error=exc.strerror)
        else:
            gone.append(path)
    return gone


def secret_backup(backup_dir: Path) -> Path:
    """Where the install's secret is kept beside the backups."""
    return backup_dir / SECRET_FILE


# -- the steps -----------------------------------------------------------------------------


def _copy(source: Path, temp: Path) -> None:
    """SQLite's backup of ``source`` into ``temp`` (created 0600), as one file, fsynced."""
    try:
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise BackupFailed(f"{temp.parent}: {exc.strerror}", code=exc.errno) from exc
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise BackupFailed(f"cannot open the ledger {source}: {exc}") from exc
    try:
        src.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        dst = sqlite3.connect(temp, isolation_level=None)
        try:
            src.backup(dst)
            # The copy carries the ledger's WAL flag: make it one self-contained file.
            mode = dst.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
            if str(mode).lower() != "delete":
                raise BackupFailed(f"{temp}: cannot leave WAL mode ({mode})")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupFailed(f"backup of {source} to {temp.parent} failed: {exc}") from exc
    finally:
        src.close()
    try:
        fsync_path(temp)
    except OSError as exc:
        raise BackupFailed(f"{temp}: {exc.strerror}", code=exc.errno) from exc


def _publish(temp: Path, backup_dir: Path, now: float) -> Path:
    """Give the verified ``temp`` its final name, never replacing another backup."""
    stamp = now
    try:
        while True:
            final = backup_dir / backup_name(stamp)
            try:
                os.link(temp, final)
                break
            except FileExistsError:
                stamp += 1e-6  # two backups in one microsecond: the next name
        temp.unlink()
        fsync_path(backup_dir)
    except OSError as exc:
        raise BackupFailed(f"{backup_dir}: {exc.strerror}", code=exc.errno) from exc
    return final


def _keep_secret(secret: Path, backup_dir: Path, now: float) -> None:
    """Copy the install's secret beside the backups when it is not there yet or differs
    (the one it replaces is kept as ``secret-replaced-<stamp>``, never deleted)."""
    try:
        wanted = secret.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BackupFailed(f"{secret}: {exc.strerror}", code=exc.errno) from exc
    target = secret_backup(backup_dir)
    try:
        if target.exists():
            if target.read_bytes() == wanted:
                return
            stamp = datetime.fromtimestamp(now, UTC).strftime(_STAMP)
            target.rename(backup_dir / f"{SECRET_FILE}-replaced-{stamp}")
            log.warning("backup_secret_replaced", path=str(target))
        write_private(target, wanted)
    except OSError as exc:
        raise BackupFailed(f"{target}: {exc.strerror}", code=exc.errno) from exc


def write_private(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` (0600) atomically: a temporary file, fsync, rename."""
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        temp.replace(target)
    except BaseException:
        _remove(temp)
        raise
    fsync_path(target.parent)


def _remove(path: Path) -> None:
    for extra in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            Path(f"{path}{extra}").unlink()


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (after a rename in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
