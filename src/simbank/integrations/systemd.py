"""systemd's sd_notify protocol, our own few lines: readiness, status, stopping, watchdog.

systemd (``Type=notify``) passes ``NOTIFY_SOCKET`` — a filesystem path or, with a leading
``@``, an abstract-namespace AF_UNIX datagram socket. Each notification is one datagram of
``KEY=value`` lines. Without ``NOTIFY_SOCKET`` (a shell, a test, a container without systemd)
every call is a no-op, so the daemon calls the notifier unconditionally.

Sending never raises: a full or vanished socket is logged at debug and the daemon goes on.

The watchdog: with ``WatchdogSec=`` systemd sets ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``) and
kills the service if ``WATCHDOG=1`` does not arrive in time. ``WatchdogPinger`` pings every
half timeout, but only while ``healthy()`` holds and the event loop is not stalled — a
daemon that is alive but wedged must not keep telling systemd it is fine.

Wiring, in ``Daemon._run_tasks`` (``daemon/app.py``)::

    notifier = Notifier.from_env()
    tg.create_task(WatchdogPinger(notifier, healthy).run(), name="watchdog")
    notifier.ready()                       # config valid, modems starting
    notifier.status(summary_line(...))     # checked every 5 s, sent when it changed
    notifier.stopping()                    # when ``stop`` is set
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping

import structlog

from simbank.clock import Clock, LoopClock

log = structlog.get_logger(__name__)

#: modem states in the order the summary names them (unknown states follow, sorted)
MODEM_STATE_ORDER = ("ready", "switching", "probing", "unresponsive", "offline", "absent")
#: SIM states worth a word in the summary; available/active/resting are normal
SIM_ATTENTION_STATES = ("blocked", "suspected", "locked", "absent", "disabled")


def _address(raw: str | None) -> str | bytes | None:
    """The ``sendto`` address for a ``NOTIFY_SOCKET`` value; ``None`` when unusable."""
    if not raw:
        return None
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    log.debug("sd_notify_unsupported_address", address=raw)
    return None


class Notifier:
    """Notifications to the service manager; a no-op when there is no ``NOTIFY_SOCKET``."""

    def __init__(
        self,
        notify_socket: str | None,
        *,
        watchdog_usec: str | None = None,
        watchdog_pid: str | None = None,
    ) -> None:
        self._address = _address(notify_socket)
        self._watchdog_usec = watchdog_usec
        self._watchdog_pid = watchdog_pid
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """A notifier for ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``."""
        env = os.environ if environ is None else environ
        return cls(
            env.get("NOTIFY_SOCKET"),
            watchdog_usec=env.get("WATCHDOG_USEC"),
            watchdog_pid=env.get("WATCHDOG_PID"),
        )

    @property
    def enabled(self) -> bool:
        """True when notifications go somewhere."""
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``KEY=value`` each) as one datagram; True if it was sent."""
        if self._address is None:
            return False
        payload = "\n".join(fields).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            log.debug("sd_notify_failed", fields=list(fields), error=str(exc))
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up is complete (and the watchdog, if any, starts counting)."""
        if status is None:
            return self.notify("READY=1")
        return self.notify("READY=1", _status_field(status))

    def status(self, text: str) -> bool:
        """``STATUS=...``: the one line ``systemctl status`` shows."""
        return self.notify(_status_field(text))

    def reloading(self) -> bool:
        """``RELOADING=1``: a reload started; call ``ready()`` again when it is done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        """``STOPPING=1``: shutdown has begun."""
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: we are alive (send it every ``watchdog_interval()`` seconds)."""
        return self.notify("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half ``WATCHDOG_USEC``), or None without a watchdog for us."""
        if self._address is None or not self._watchdog_usec:
            return None
        if self._watchdog_pid:
            try:
                if int(self._watchdog_pid) != os.getpid():
                    return None
            except ValueError:
                return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        return usec / 2_000_000

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _status_field(text: str) -> str:
    """``STATUS=`` with the text on one line (a newline would start a new field)."""
    return "STATUS=" + " ".join(text.split())


class WatchdogPinger:
    """Sends ``WATCHDOG=1`` every interval while ``healthy()`` holds and the loop keeps time.

    Each round sleeps one interval and measures how late it woke. Woken more than half an
    interval late means the event loop was blocked (a stuck callback, a synchronous call in a
    coroutine): that round's ping is skipped and a warning logged. With the default interval
    of half ``WatchdogSec=``, one skipped ping lets systemd's timer run out and restart us.
    """

    def __init__(
        self,
        notifier: Notifier,
        healthy: Callable[[], bool],
        *,
        interval: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.notifier = notifier
        self.clock: Clock = clock if clock is not None else LoopClock()
        self.healthy = healthy
        self.interval = interval if interval is not None else notifier.watchdog_interval()
        self.sent = 0
        self.skipped_stalled = 0
        self.skipped_unhealthy = 0

    async def run(self) -> None:
        """Ping until cancelled; returns at once when there is no watchdog to ping."""
        interval = self.interval
        if interval is None or not self.notifier.enabled:
            return
        clock = self.clock
        log.debug("watchdog_started", interval_s=interval)
        while True:
            before = clock.now()
            await clock.sleep(interval)
            late = clock.now() - before - interval
            if late > interval / 2:
                self.skipped_stalled += 1
                log.warning("watchdog_loop_stalled", late_s=round(late, 3), interval_s=interval)
                continue
            if not self._check():
                self.skipped_unhealthy += 1
                continue
            if self.notifier.watchdog():
                self.sent += 1

    def _check(self) -> bool:
        try:
            ok = self.healthy()
        except Exception:
            log.warning("watchdog_health_check_failed", exc_info=True)
            return False
        if not ok:
            log.warning("watchdog_unhealthy")
        return ok


async def run_watchdog(notifier: Notifier, healthy: Callable[[], bool]) -> None:
    """``await run_watchdog(notifier, healthy)``: a ``WatchdogPinger`` at the default interval."""
    await WatchdogPinger(notifier, healthy).run()


def summary_line(
    modem_states: Mapping[str, str],
    sim_states: Mapping[str, str],
    mqtt_connected: bool,
) -> str:
    """``"8 modems: 7 ready, 1 offline; 15 SIMs: 2 blocked; mqtt connected"``.

    ``modem_states`` and ``sim_states`` map an id (modem id, ICCID) to its state name. Every
    modem state present is counted; SIMs only in the states that need attention.
    """
    modems = Counter(modem_states.values())
    order = [s for s in MODEM_STATE_ORDER if s in modems]
    order += sorted(s for s in modems if s not in MODEM_STATE_ORDER)
    modem_part = _plural(len(modem_states), "modem")
    if order:
        modem_part += ": " + ", ".join(f"{modems[s]} {s}" for s in order)
    sims = Counter(sim_states.values())
    attention = [f"{sims[s]} {s}" for s in SIM_ATTENTION_STATES if sims[s]]
    sim_part = _plural(len(sim_states), "SIM")
    if sim_states:
        sim_part += ": " + (", ".join(attention) if attention else "all ok")
    mqtt_part = "mqtt connected" if mqtt_connected else "mqtt disconnected"
    return f"{modem_part}; {sim_part}; {mqtt_part}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
