"""The ledger's health as the gateway shows it: ``degraded`` while it cannot book.

Any ledger write or read that meets a storage failure (disk full, read-only, I/O, locked,
corrupt) tells :class:`StorageWatch`, from whichever thread it ran in. The gateway then goes
``degraded``: ``bridge/state`` and ``bridge/info`` say so with the reason, one
``storage_degraded`` event is published, and every write is refused at once
(``storage_unavailable``) without touching the storage. A small test commit every
``probe_interval_s`` ends the spell by itself once the storage takes writes again (one
``storage_recovered`` event). A ledger restored after corruption holds the gateway
``degraded`` until an operator confirms it (``storage/confirm``). The free space of the state
directory is read every ``free_space_check_s``; below the margin a ``storage_low`` event and
the metrics warn before writes fail. The rules are :mod:`simbank.store.health`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from simbank.clock import Clock
from simbank.config.storage import StorageConfig
from simbank.contract import BridgeState, StorageInfo
from simbank.daemon.board import StatusBoard
from simbank.errors import StorageUnavailable
from simbank.store.core import LedgerCore
from simbank.store.health import Degraded, Ended, SpaceWatch, StorageHealth

log = structlog.get_logger(__name__)

MIB = 1024 * 1024


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on ``path``'s filesystem (None: unknown)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


class StorageWatch:
    """The degraded state, its recovery probe and the free-space watch of one ledger."""

    def __init__(
        self,
        ledger: LedgerCore,
        board: StatusBoard,
        cfg: StorageConfig,
        state_dir: Path,
        clock: Clock,
    ) -> None:
        self.ledger = ledger
        self.board = board
        self.cfg = cfg
        self.state_dir = state_dir
        self.clock = clock
        self.health = StorageHealth()
        self.space = SpaceWatch(int(cfg.free_space_margin_mb * MIB))
        self.free: int | None = None
        #: The last verified backup: (path, when) (set by the backup schedule).
        self.last_backup: tuple[str, float] | None = None
        #: A ledger restored after corruption, not yet confirmed (what the recovery did).
        self.recovery: dict[str, Any] | None = None
        #: Called after every change of what ``bridge/state``/``bridge/info`` show (the
        #: daemon republishes them; the metrics read :attr:`health` at each scrape).
        self.on_change: Callable[[], None] | None = None
        #: Called (on the loop) for a failure whose cause is ``corrupt``: the daemon runs the
        #: integrity check and, if the file is corrupt, recovers it.
        self.on_corrupt: Callable[[StorageUnavailable], None] | None = None
        #: A ``corrupt`` failure is being checked: the probe must not end the spell (a corrupt
        #: file may still take a small commit).
        self.checking = False
        self._loop: asyncio.AbstractEventLoop | None = None
        ledger.on_fault = self._fault_any_thread

    # -- what the gateway shows ---------------------------------------------------------------

    @property
    def degraded(self) -> Degraded | None:
        return self.health.degraded

    def bridge_state(self) -> bytes:
        """``bridge/state`` as it is now (``online`` or ``degraded``, with the reason)."""
        spell = self.health.degraded
        if spell is None:
            return BridgeState(state="online").to_json()
        return BridgeState(state="degraded", reason=spell.reason, since=_at(spell.since)).to_json()

    def info(self) -> StorageInfo:
        """``bridge/info``'s ``storage``."""
        spell = self.health.degraded
        return StorageInfo(
            state="ok" if spell is None else "degraded",
            reason=None if spell is None else spell.reason,
            detail=None if spell is None else spell.detail,
            since=None if spell is None else _at(spell.since),
            free_bytes=self.free,
            low_space=self.space.low,
            last_backup=None if self.last_backup is None else self.last_backup[0],
            last_backup_at=None if self.last_backup is None else _at(self.last_backup[1]),
            recovery=self.recovery,
        )

    # -- what happened ------------------------------------------------------------------------

    def _fault_any_thread(self, exc: StorageUnavailable) -> None:
        """The ledger's ``on_fault``: called in a worker thread or on the loop, inside the
        ledger's lock; hands the fault to the loop (or handles it now before the loop runs)."""
        loop = self._loop
        if loop is None:
            if threading.current_thread() is threading.main_thread():
                self.fault(exc)  # before the loop runs: the daemon is starting
            else:  # a worker thread after the watch stopped: the daemon is stopping
                log.warning("storage_fault_unreported", error=str(exc), cause=exc.cause)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing: nothing to tell
            loop.call_soon_threadsafe(self.fault, exc)

    def fault(self, exc: StorageUnavailable) -> None:
        """A storage failure: a spell starts (or goes on)."""
        now = self.clock.now()
        spell = self.health.failed(exc.cause, str(exc), now)
        if spell is not None:
            log.error("storage_degraded", reason=spell.reason, detail=spell.detail)
            self.board.event("storage_degraded", reason=spell.reason, detail=spell.detail)
        self.changed()
        if exc.cause == "corrupt" and self.on_corrupt is not None and not self.checking:
            self.checking = True
            self.on_corrupt(exc)

    def cleared_corruption(self) -> None:
        """The integrity check found the file sound: the probe may end the spell."""
        self.checking = False

    def hold(self, recovery: dict[str, Any]) -> None:
        """A ledger restored after corruption: degraded until :meth:`confirm`."""
        self.recovery = recovery
        self.checking = False
        detail = str(recovery.get("detail") or "ledger restored after corruption")
        spell = self.health.hold(detail, self.clock.now())
        if spell is not None:
            log.error("storage_degraded", reason=spell.reason, detail=spell.detail)
            self.board.event(
                "storage_degraded", reason=spell.reason, detail=spell.detail, recovery=recovery
            )
        self.changed()

    def confirm(self) -> Ended | None:
        """The operator accepted the restored ledger: bookings resume."""
        ended = self.health.confirmed(self.clock.now())
        self.recovery = None
        if ended is not None:
            self._recovered(ended)
        self.changed()
        return ended

    async def probe_once(self) -> bool:
        """Try one commit now if a spell the probe may end is on; True when it ended."""
        spell = self.health.degraded
        if spell is None or spell.held or self.checking:
            return False
        now = self.clock.now()
        try:
            await asyncio.to_thread(self.ledger.probe, now)
        except StorageUnavailable:
            return False
        if self.checking:  # a corrupt-file report came meanwhile: the check decides
            return False
        ended = self.health.committed(self.clock.now())
        if ended is None:
            return False
        self._recovered(ended)
        self.changed()
        return True

    def check_space(self) -> None:
        free = free_bytes(self.state_dir)
        changed = free != self.free
        self.free = free
        if free is None:
            return
        crossed = self.space.update(free)
        if crossed == "low":
            log.warning("storage_low", free_bytes=free, margin_bytes=self.space.margin)
            self.board.event(
                "storage_low",
                free_bytes=free,
                margin_bytes=self.space.margin,
                path=str(self.state_dir),
            )
        elif crossed == "ok":
            log.info("storage_space_back", free_bytes=free, margin_bytes=self.space.margin)
        if crossed is not None or (changed and self.space.low):
            self.changed()

    def _recovered(self, ended: Ended) -> None:
        log.warning("storage_recovered", reason=ended.spell.reason, lasted_s=ended.lasted_s)
        self.board.event(
            "storage_recovered", reason=ended.spell.reason, lasted_s=round(ended.lasted_s, 1)
        )

    def refusal(self) -> tuple[str, str, bool] | None:
        """Why requests are refused now: (cause, why, only those that book), or None. A held
        spell (a restored ledger) refuses bookings only: the storage works, and the operator
        needs to disable SIMs, release them, pause traffic before confirming; texts, verdicts
        and calls seen on the modems are stored meanwhile."""
        spell = self.health.degraded
        if spell is None:
            return None
        return spell.reason, spell.detail, spell.held

    def changed(self) -> None:
        """Refuse writes (or take them again) as the health says; republish."""
        spell = self.health.degraded
        failing = spell is not None and not spell.held
        self.ledger.refusing = (spell.reason, spell.detail) if failing and spell else None
        if self.on_change is not None:
            self.on_change()

    # -- the daemon's task ----------------------------------------------------------------------

    async def run(self) -> None:
        """The recovery probe and the free-space watch, until cancelled."""
        self._loop = asyncio.get_running_loop()
        next_space = 0.0
        loop = self._loop
        try:
            while True:
                if loop.time() >= next_space:
                    self.check_space()
                    next_space = loop.time() + self.cfg.free_space_check_s
                await self.probe_once()
                await asyncio.sleep(min(self.cfg.probe_interval_s, self.cfg.free_space_check_s))
        finally:
            self._loop = None


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
