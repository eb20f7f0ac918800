"""When a modem's session is opened again: the supervisor's reconnect policy.

Every session that ends is classified by why it ended. A session that stayed ready
:data:`STABLE_SESSION_S`, a clean end or a port that went away starts the backoff afresh; the
same failure again lets it grow (to minutes), another failure starts its own count. After
:data:`FAILED_AFTER` identical failures in a row the modem is published ``failed``. An
unplugged modem is looked for every :data:`ABSENT_BACKOFF_MAX_S` at most: it is away, not
failing.
"""

from __future__ import annotations

from collections import deque

from simbank.backoff import Backoff

#: A session that stayed ready this long was a good one: the reconnect backoff starts again.
STABLE_SESSION_S = 30.0
#: The backoff of a modem that keeps failing grows to this (minutes, not seconds).
FAILED_BACKOFF_MAX_S = 300.0
#: The longest wait between two looks for an unplugged modem's port.
ABSENT_BACKOFF_MAX_S = 30.0
#: The same failure this many sessions in a row: the modem is published ``failed``.
FAILED_AFTER = 2
#: Why a session ended that says nothing is wrong with the modem.
_BLAMELESS = frozenset({"session_ended", "port_missing"})


class Reconnect:
    """Counts one modem's consecutive failures and chooses the wait before the next session."""

    def __init__(self) -> None:
        self._backoff = Backoff(0.5, FAILED_BACKOFF_MAX_S)
        self._absent = Backoff(0.5, ABSENT_BACKOFF_MAX_S)
        #: Consecutive sessions that failed the same way, and how (for state and backoff).
        self.failures = 0
        self.failure_reason: str | None = None
        #: The delays chosen before re-opening the port, newest last (what the backoff decided).
        self.retry_delays: deque[float] = deque(maxlen=64)

    @property
    def failed(self) -> bool:
        """The same failure came :data:`FAILED_AFTER` times in a row."""
        return self.failures >= FAILED_AFTER

    def session_ended(self, reason: str, *, stable: bool) -> float:
        """A session ended for ``reason`` (``stable``: it had been ready long enough);
        returns the seconds to wait before the next one."""
        if stable or reason in _BLAMELESS:
            self._backoff.reset()
            self.failures = 0
        elif reason == self.failure_reason:
            self.failures += 1  # the same failure again: the backoff keeps growing
        else:
            self.failures = 1  # another kind of failure starts its own count
        if reason != "port_missing":
            self._absent.reset()
        self.failure_reason = None if reason == "port_missing" else reason
        delay = self._absent.next() if reason == "port_missing" else self._backoff.next()
        self.retry_delays.append(delay)
        return delay
