"""The ledger's upkeep while the daemon runs: backups, the retention fold, and recovery from
corruption.

- **Backups** (:mod:`simbank.store.backup`): SQLite's online backup every
  ``[storage] backup_interval_h`` (the first one when the newest backup is older than that),
  on demand (``storage/backup``), kept ``backup_keep`` deep, each verified. A failure is a
  ``backup_failed`` event; the older backups stay.
- **Retention** (:mod:`simbank.store.retention`): once a day, rows older than
  ``retention_days`` (and than any quota window of the policies) are folded into per-SIM daily
  totals.
- **Corruption** (:mod:`simbank.store.recovery`): a storage failure whose cause is
  ``corrupt`` runs SQLite's integrity check. A corrupt file is moved aside (never deleted),
  the last good backup put in its place with the rows still readable from the corrupt file
  salvaged, and the gateway held ``degraded`` until an operator confirms (``storage/confirm``):
  quotas never restart from zero unnoticed.

All of the file work runs in worker threads; this module only schedules it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from simbank.daemon.runtime import BankRuntime
from simbank.daemon.storage import StorageWatch
from simbank.errors import LedgerError, StorageUnavailable
from simbank.store.backup import BackupInfo, list_backups, make_backup
from simbank.store.recovery import check_ledger, confirm_recovery, recover, recovery_pending
from simbank.store.retention import quota_history_s

log = structlog.get_logger(__name__)

HOUR_S = 3600.0
DAY_S = 86400.0
#: The first retention fold runs this long after the start (not in the busy first minute).
FIRST_FOLD_AFTER_S = 300.0
#: A failed scheduled backup is tried again after this long (or the interval, if shorter).
BACKUP_RETRY_S = HOUR_S


class LedgerUpkeep:
    """Backups, the daily fold and corruption recovery for one daemon's ledger."""

    def __init__(self, runtime: BankRuntime, storage: StorageWatch) -> None:
        config = runtime.config
        self.runtime = runtime
        self.ledger = runtime.ledger
        self.storage = storage
        self.cfg = config.storage
        self.state_dir = config.gateway.state_dir
        self.backup_dir: Path = self.cfg.backups_in(self.state_dir)
        self.tz = ZoneInfo(config.gateway.timezone)
        self.clock = runtime.clock
        # The fold's idea of now may not run ahead of the ledger's: a wall clock set a year
        # ahead (a bad NTP, a mistyped date) must not fold away the quota windows for good.
        self._reference: float | None = None
        self._started = runtime.clock.monotonic()
        self._backup_lock = asyncio.Lock()
        #: Set when the daemon stops mid-fold: the fold's worker thread ends between batches.
        self._fold_stop = threading.Event()
        self._recovering: asyncio.Task[None] | None = None
        storage.on_corrupt = self._on_corrupt
        with contextlib.suppress(LedgerError):  # unreadable now: read at the first fold
            self._reference = self.ledger.newest_booking_at() or runtime.clock.now()

    @classmethod
    def of(cls, runtime: BankRuntime) -> LedgerUpkeep:
        """The upkeep of ``runtime``'s ledger with a storage watch of its own."""
        cfg = runtime.config
        watch = StorageWatch(
            runtime.ledger, runtime.board, cfg.storage, cfg.gateway.state_dir, runtime.clock
        )
        return cls(runtime, watch)

    # -- backups ------------------------------------------------------------------------------

    async def backup_now(self) -> BackupInfo:
        """One verified backup now (one at a time); raises ``BackupFailed`` (a LedgerError)."""
        async with self._backup_lock:
            info = await asyncio.to_thread(
                make_backup,
                self.ledger.path,
                self.backup_dir,
                self.cfg.backup_keep,
                self.clock.now(),
            )
        self.storage.last_backup = (str(info.path), info.created_at)
        self.storage.changed()
        return info

    async def _backups(self) -> None:
        interval = self.cfg.backup_interval_h * HOUR_S
        if interval <= 0:
            return
        try:
            found = await asyncio.to_thread(list_backups, self.backup_dir)
        except LedgerError as exc:  # unreadable: the first backup says more (or fails)
            log.warning("backups_unreadable", error=str(exc), backup_dir=str(self.backup_dir))
            found = []
        if found:
            newest = found[0]
            self.storage.last_backup = (str(newest.path), newest.created_at)
            self.storage.changed()
        wait = 0.0 if not found else found[0].created_at + interval - self.clock.now()
        while True:
            if wait > 0:
                await self.clock.sleep(wait)
            wait = interval
            if self.storage.degraded is not None:
                wait = min(interval, BACKUP_RETRY_S)  # never back up a ledger in doubt
                continue
            try:
                await self.backup_now()
            except Exception as exc:  # noqa: BLE001 - a failed backup is reported, never fatal
                wait = min(interval, BACKUP_RETRY_S)
                log.warning("backup_failed", error=str(exc), backup_dir=str(self.backup_dir))
                self.storage.board.event(
                    "backup_failed", error=str(exc), backup_dir=str(self.backup_dir)
                )

    # -- retention ----------------------------------------------------------------------------

    def fold_time(self) -> float:
        """The fold's now: the wall clock, but never more than a day past the ledger's newest
        booking at start plus the time the daemon has run (a clock stepped ahead folds
        nothing it should not)."""
        now = self.clock.now()
        if self._reference is None:
            self._reference = self.ledger.newest_booking_at() or now
        running = self.clock.monotonic() - self._started
        return min(now, self._reference + DAY_S + running)

    async def fold_now(self) -> dict[str, Any]:
        """Fold what is past the horizon now (a no-op with ``retention_days`` 0)."""
        # The policies and the longest call in force now (a reload may change them): no
        # quota window is folded.
        max_call_s = self.runtime.config.compliance.max_call_duration_s
        keep_s = quota_history_s(self.runtime.limits.values(), max_call_s)
        fold = asyncio.to_thread(
            self.ledger.fold,
            self.fold_time(),
            self.cfg.retention_days,
            self.tz,
            keep_s=keep_s,
            stop=self._fold_stop.is_set,
        )
        try:
            result = await fold
        except asyncio.CancelledError:
            # The daemon is stopping: the worker thread ends after the batch it is in, before
            # the ledger closes under it (the next fold goes on from there).
            self._fold_stop.set()
            raise
        summary = {
            "cutoff": None if math.isinf(result.cutoff) else result.cutoff,
            "rows": dict(result.rows),
            "days": result.days,
        }
        if result.total:
            log.info("ledger_folded", **summary)
        return summary

    async def _retention(self) -> None:
        if self.cfg.retention_days <= 0:
            return
        wait = FIRST_FOLD_AFTER_S
        while True:
            await self.clock.sleep(wait)
            wait = DAY_S
            if self.storage.degraded is not None:
                wait = HOUR_S
                continue
            try:
                await self.fold_now()
            except LedgerError as exc:  # a storage fault: the watch has it; try again later
                log.warning("ledger_fold_failed", error=str(exc))
                wait = HOUR_S
            except Exception:  # a bug in the fold must not stop the daemon
                log.exception("ledger_fold_crashed")
                wait = HOUR_S

    # -- corruption ---------------------------------------------------------------------------

    def hold_if_pending(self) -> None:
        """At start: a recovery recorded and not confirmed holds the gateway ``degraded``."""
        try:
            pending = recovery_pending(self.ledger)
        except LedgerError as exc:
            log.warning("recovery_state_unreadable", error=str(exc))
            return
        if pending is not None:
            self.storage.hold(pending)

    async def confirm(self, actor: str, note: str | None) -> dict[str, Any] | None:
        """The operator accepts the restored ledger: the hold is lifted first (so the
        confirmation itself can be written), then recorded; put back if that fails."""
        if self.storage.checking:
            raise StorageUnavailable(
                "the ledger is being checked for corruption: nothing to confirm yet",
                cause="corrupt",
            )
        pending = self.storage.recovery
        ended = self.storage.confirm()
        try:
            record = await asyncio.to_thread(
                confirm_recovery, self.ledger, self.clock.now(), actor, note
            )
        except StorageUnavailable:
            if ended is not None and pending is not None:
                self.storage.hold(pending)
            raise
        return record

    def _on_corrupt(self, exc: StorageUnavailable) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (start-up, shut-down): the next start checks the file
            self.storage.cleared_corruption()
            return
        if self._recovering is None or self._recovering.done():
            self._recovering = loop.create_task(self._recover(), name="ledger-recovery")

    async def _recover(self) -> None:
        """Check the file; if it is corrupt, replace it (moved aside, the last good backup in
        its place, newer rows salvaged) and hold the gateway until an operator confirms.
        Whatever happens, the spell ends up held or left to the probe, never stuck."""
        settled = False
        try:
            report = await asyncio.to_thread(check_ledger, self.ledger.path)
            if not report.corrupt:
                log.warning("ledger_check_passed", status=report.status, detail=report.detail)
                return
            log.error("ledger_corrupt", detail=report.detail)
            outcome: list[Any] = []

            def replace() -> None:
                outcome.append(recover(self.state_dir, self.backup_dir, self.clock.now()))

            async with self._backup_lock:
                await asyncio.to_thread(self.ledger.swap_file, replace)
            pending = None
            with contextlib.suppress(LedgerError):
                pending = await asyncio.to_thread(recovery_pending, self.ledger)
            detail = outcome[0].detail if outcome else "recovered"
            self.storage.hold(pending or {"detail": detail})
            settled = True
        except Exception as exc:
            log.exception("ledger_recovery_failed", error=str(exc))
            # Held: only an operator ends it (the next start restores from the backup).
            self.storage.hold(
                {"detail": f"recovery failed: {exc}; restart simbankd", "error": str(exc)}
            )
            settled = True
        finally:
            if not settled:
                self.storage.cleared_corruption()

    # -- the daemon's task --------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._backups(), name="ledger-backups")
            tg.create_task(self._retention(), name="ledger-retention")
