"""The gateway while its ledger cannot even be opened: a stand-in that says so and refuses,
until the storage lets the daemon start.

A box that reboots with its SD card full, or mounted read-only after an I/O error, would
otherwise exit at once, be restarted by systemd every few seconds, and show only ``offline``
to whoever watches the broker. Instead, when ``simbankd run`` cannot take its state directory
or open its ledger for a storage reason (:func:`startup_cause`), the stand-in:

- connects to the broker as the daemon would and publishes ``bridge/state`` ``degraded`` with
  the cause, ``bridge/info`` with ``storage`` saying why, and one ``storage_degraded`` event;
- answers every request ``storage_unavailable`` (its ``detail.cause`` the same), at once;
- publishes each configured modem ``offline`` (its ``reason`` says why): no modem is opened
  meanwhile, so nothing is dialled, and texts wait on their SIMs (nothing read could be
  stored); the SIMs' payloads keep their last values;
- tells systemd it is ready (the status line says why) and keeps its watchdog fed;
- is told by ``simbankd run`` each time it tries again (every ``[storage] probe_interval_s``):
  first :func:`storage_writable`, a cheap test off the event loop, and only once that passes
  the daemon itself; then ``storage_recovered``, and the broker is left to the daemon, which
  publishes its own state (if the daemon dies before it connects, :meth:`StandIn.say_offline`
  takes the ``degraded`` back). A ``systemctl reload`` meanwhile re-reads the configuration
  the daemon will start with.

A cause that is not the storage's (a permission refused, a file that is not a ledger) is no
reason to wait: the daemon exits with its error, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import aiomqtt
import structlog

from simbank import __version__
from simbank.clock import SystemClock
from simbank.config.loader import load_config
from simbank.config.models import Config
from simbank.contract import (
    COMMANDS,
    BridgeInfo,
    BridgeState,
    Event,
    ModemState,
    StorageInfo,
    Topics,
    utc_now,
)
from simbank.daemon.router import Handler, RequestRouter
from simbank.daemon.storage import free_bytes
from simbank.errors import ConfigError, StorageUnavailable
from simbank.integrations.systemd import Notifier, WatchdogPinger
from simbank.mqtt import Inbound, MqttBridge, connection
from simbank.mqtt.options import client_options
from simbank.store.core import storage_cause
from simbank.store.ledger import LEDGER_FILE

log = structlog.get_logger(__name__)

#: OS errors that are the storage's, by errno → the ``degraded`` reason.
_ERRNO_CAUSES: Final = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EROFS: "read_only",
    errno.EIO: "io_error",
}
#: The storage's own causes: worth waiting for (``corrupt`` is the recovery's, ``unknown``
#: nobody's).
_WAITING_CAUSES: Final = frozenset({"disk_full", "read_only", "io_error", "locked"})
#: Bytes free under which an I/O error opening the ledger is taken for a full disk (SQLite
#: reports a shared-memory file it cannot extend as a "disk I/O error").
_NEARLY_FULL: Final = 64 * 1024


def startup_cause(exc: BaseException, state_dir: Path) -> str | None:
    """Why the state directory or the ledger could not be taken at start, if it is the
    storage's fault (``disk_full``, ``read_only``, ``io_error``, ``locked``); None otherwise.

    Looks through the exception and its causes: an OS error's errno, a storage fault, an
    SQLite error's code. An I/O error on a filesystem mounted read-only, or with next to no
    space left, is said as that."""
    cause: str | None = None
    seen: BaseException | None = exc
    while seen is not None and cause is None:
        if isinstance(seen, StorageUnavailable):
            cause = seen.cause
        elif isinstance(seen, sqlite3.Error):
            cause = storage_cause(seen)
        elif isinstance(seen, OSError) and seen.errno is not None:
            cause = _ERRNO_CAUSES.get(seen.errno)
        seen = seen.__cause__ or seen.__context__
    if cause not in _WAITING_CAUSES:
        return None
    if cause == "io_error":
        cause = _filesystem_says(state_dir) or cause
    return cause


def _existing(path: Path) -> Path:
    """``path``, or its nearest parent that exists (the filesystem it would be on)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _filesystem_says(state_dir: Path) -> str | None:
    """``read_only`` or ``disk_full`` when the filesystem holding ``state_dir`` (or its
    nearest existing parent) is so; None when it cannot tell."""
    try:
        fs = os.statvfs(_existing(state_dir))
    except OSError:
        return None
    if fs.f_flag & os.ST_RDONLY:
        return "read_only"
    if fs.f_bavail * fs.f_frsize < _NEARLY_FULL:
        return "disk_full"
    return None


#: The file :func:`storage_writable` writes (and removes) in the state directory.
PROBE_FILE: Final = ".simbankd-storage-probe"
#: Seconds :func:`storage_writable` waits for a ledger another process keeps locked.
PROBE_BUSY_S: Final = 1.0


def storage_writable(state_dir: Path) -> None:
    """Raise what the storage raises if ``state_dir`` cannot be written now: a 4 KB file is
    written, synced and removed, and the ledger (when there is one) takes SQLite's write lock,
    waiting a second at most. Blocking: run it in a worker thread. Cheaper than building the
    daemon (which checks the whole ledger) every few seconds on a failing card."""
    probe = state_dir / PROBE_FILE
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if os.write(fd, bytes(4096)) < 4096:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(probe))
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    ledger = state_dir / LEDGER_FILE
    if ledger.exists():
        uri = f"file:{quote(str(ledger))}?mode=rw"
        conn = sqlite3.connect(uri, uri=True, timeout=PROBE_BUSY_S)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()


class StandIn:
    """The broker side of a gateway waiting for its storage (see the module doc)."""

    def __init__(self, config: Config, notifier: Notifier | None = None) -> None:
        self.config = config
        self.topics = Topics(config.mqtt.base_topic, config.gateway.id)
        self.clock = SystemClock()
        self.started_at = utc_now()
        self.cause = "unknown"
        self.detail = ""
        self.since: float | None = None
        self.client_id = config.mqtt.client_id or f"simbankd-{config.gateway.id}"
        self.bridge = MqttBridge(
            config.mqtt,
            self.topics,
            self.client_id,
            info=self._info,
            state=self._state,
            subscriptions=(f"{self.topics.request_prefix}#",),
            handler=self._on_request,
        )
        handlers: dict[str, Handler] = dict.fromkeys(COMMANDS, self._refuse)
        self.router = RequestRouter(self.topics, self.bridge, handlers, None, self.clock)
        # Every request, read-only ones too: there is no ledger to read.
        self.router.refusing = lambda: (self.cause, self._why(), False)
        self.notifier = notifier if notifier is not None else Notifier.from_env()
        self._tasks: list[asyncio.Task[None]] = []
        #: ``systemctl reload`` (SIGHUP) while waiting: read the configuration again first.
        self.reload_asked = False

    # -- what it shows ------------------------------------------------------------------------

    def failing(self, cause: str, detail: str) -> None:
        """The storage failed (again) with ``cause``: the first time starts the spell (one
        event); a new cause or detail updates the retained state."""
        first = self.since is None
        if first:
            self.since = self.clock.now()
        if not first and (cause, detail) == (self.cause, self.detail):
            return
        self.cause, self.detail = cause, detail
        if first:
            log.error("storage_degraded_at_start", reason=cause, detail=detail)
            self._event("storage_degraded", reason=cause, detail=detail)
            for modem in self.config.modems:
                offline = ModemState(
                    id=modem.id,
                    port=modem.port,
                    state="offline",
                    reason=f"not opened: the daemon waits for its storage ({cause})",
                    ts=self._at(self.clock.now()),
                )
                self.bridge.set_retained(self.topics.modem(modem.id), offline.to_json())
        else:
            log.warning("storage_still_failing_at_start", reason=cause, detail=detail)
        self.bridge.set_retained(self.topics.bridge_state, self._state())
        self.bridge.set_retained(self.topics.bridge_info, self._info())
        self.notifier.status(f"degraded: {cause}; {self._why()}")

    def _why(self) -> str:
        return f"the ledger cannot be opened ({self.detail}); the daemon starts once it can"

    def _state(self) -> bytes:
        since = None if self.since is None else self._at(self.since)
        return BridgeState(state="degraded", reason=self.cause, since=since).to_json()

    def _info(self) -> bytes:
        free = free_bytes(_existing(self.config.gateway.state_dir))
        storage = StorageInfo(
            state="degraded",
            reason=self.cause,
            detail=self._why(),
            since=None if self.since is None else self._at(self.since),
            free_bytes=free,
            low_space=self.cause == "disk_full",
        )
        return BridgeInfo(
            version=__version__,
            gateway=self.config.gateway.id,
            started_at=self.started_at,
            config=self.config.summary(),
            state="degraded",
            storage=storage,
        ).to_json()

    @staticmethod
    def _at(epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, UTC)

    def _event(self, event_type: str, **fields: Any) -> None:
        event = Event(type=event_type, ts=self._at(self.clock.now()), **fields)
        self.bridge.publish(self.topics.bridge_event, event.to_json())

    def reload_requested(self) -> None:
        """SIGHUP before the daemon started: the configuration is read again before the next
        try (:meth:`config_now`)."""
        log.info("reload_waiting_for_storage", reason=self.cause)
        self.reload_asked = True

    def config_now(self, path: str, config: Config) -> Config:
        """The configuration the daemon starts with: ``config``, or ``path`` read again when
        a reload was asked (a file that no longer reads keeps ``config``, with a warning)."""
        if not self.reload_asked:
            return config
        self.reload_asked = False
        try:
            fresh = load_config(path)
        except ConfigError as exc:
            log.warning("reload_refused", problems=exc.lines)
            return config
        log.info("reloaded_waiting_for_storage")
        return fresh

    # -- requests -----------------------------------------------------------------------------

    async def _on_request(self, inbound: Inbound) -> None:
        if inbound.topic.startswith(self.topics.request_prefix):
            await self.router.submit(inbound)

    async def _refuse(self, _request: Any) -> dict[str, Any]:
        raise StorageUnavailable(self._why(), cause=self.cause)

    # -- its life -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and answer (in tasks of the running loop); systemd hears ``READY``. Once."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self.bridge.run(), name="standin-mqtt"),
            asyncio.create_task(self.router.run(), name="standin-requests"),
            asyncio.create_task(
                WatchdogPinger(self.notifier, lambda: True).run(), name="standin-watchdog"
            ),
        ]
        self.notifier.ready(f"degraded: {self.cause}; {self._why()}")

    async def close(self, *, recovered: bool) -> None:
        """Leave the broker (``recovered``: after a ``storage_recovered`` event, the daemon
        taking over; else the gateway stops and says ``offline``)."""
        if recovered and self.since is not None:
            lasted = round(self.clock.now() - self.since, 1)
            log.warning("storage_recovered_at_start", reason=self.cause, lasted_s=lasted)
            self._event("storage_recovered", reason=self.cause, lasted_s=lasted)
        if not recovered:
            self.notifier.stopping()
        self.bridge.stop(handover=recovered)
        bridge, *others = self._tasks
        for task in others:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await asyncio.gather(bridge, return_exceptions=True)
        bridge.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # The daemon's own pinger first pings an interval after it starts: one now, so
        # systemd's watchdog never sees the handover as a silence.
        self.notifier.watchdog()

    async def say_offline(self) -> None:
        """The daemon this handed over to stopped before it ever connected: take back the
        retained ``degraded`` (``offline``, as its last will would have said)."""
        options = client_options(self.config.mqtt, self.client_id, self.topics.bridge_state)
        offline = BridgeState(state="offline").to_json()
        try:
            async with asyncio.timeout(5), connection.publisher(options) as client:
                await client.publish(self.topics.bridge_state, offline, qos=1, retain=True)
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            log.warning("offline_not_published", error=str(exc))
