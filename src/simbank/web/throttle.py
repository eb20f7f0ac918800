"""How long a peer waits before its next login: the brake on guessing passwords.

Every login the page tries is a new broker connection with the password it was given, so the
relay is a password oracle; this slows it down per peer address, across WebSockets. After
the n-th refused login from an address (within :data:`WINDOW_S` of the previous one) its next
try starts no sooner than ``min(2**n, 30)`` s after that refusal. Tries from the same address
queue one behind the other, so opening more sockets does not buy more guesses. A success does
not wipe the record (a valid ``monitor`` login must not reset the count against ``operator``);
records expire :data:`WINDOW_S` after the last refusal, and at most :data:`MAX_PEERS`
addresses are remembered (the least recently refused is forgotten first). An IPv6 peer counts
as its /64: one host usually holds the whole network.

Behind a reverse proxy every peer is the proxy's address, so one user's refusals slow every
user's next login (by 30 s at most).

Decisions only; time comes from the injected :class:`~simbank.clock.Clock`.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

from simbank.clock import Clock, SystemClock

WINDOW_S = 300.0
MAX_DELAY_S = 30.0
MAX_PEERS = 1024


@dataclass(slots=True)
class _Record:
    failures: int
    last_failure: float
    next_at: float


def peer_key(address: str) -> str:
    """The key an address is counted under: itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginThrottle:
    """Per-peer login pacing shared by every session of one dashboard."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        window_s: float = WINDOW_S,
        max_delay_s: float = MAX_DELAY_S,
        max_peers: int = MAX_PEERS,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._window = window_s
        self._max_delay = max_delay_s
        self._max_peers = max_peers
        self._peers: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._peers)

    def step(self, failures: int) -> float:
        """The pause after the ``failures``-th refusal."""
        return 0.0 if failures <= 0 else min(2.0**failures, self._max_delay)

    def reserve(self, peer: str) -> float:
        """Seconds this peer's login must wait before it is tried (0: at once); the slot is
        taken, so the peer's next concurrent try waits one step more."""
        now = self.clock.monotonic()
        record = self._record(peer_key(peer), now)
        if record is None:
            return 0.0
        start = max(now, record.next_at)
        record.next_at = start + self.step(record.failures)
        return start - now

    def failed(self, peer: str) -> int:
        """Count a refused login from this peer; the number of refusals on record."""
        now = self.clock.monotonic()
        key = peer_key(peer)
        record = self._record(key, now)
        if record is None:
            self._forget_expired(now)
            record = _Record(failures=0, last_failure=now, next_at=now)
            self._peers[key] = record
            while len(self._peers) > self._max_peers:
                self._peers.popitem(last=False)
        record.failures += 1
        record.last_failure = now
        record.next_at = max(record.next_at, now + self.step(record.failures))
        self._peers.move_to_end(key)
        return record.failures

    def _record(self, key: str, now: float) -> _Record | None:
        record = self._peers.get(key)
        if record is None:
            return None
        if self._expired(record, now):
            del self._peers[key]
            return None
        return record

    def _expired(self, record: _Record, now: float) -> bool:
        return now - record.last_failure > self._window and now >= record.next_at

    def _forget_expired(self, now: float) -> None:
        """Drop the expired records at the old end (the dict is in order of last refusal)."""
        while self._peers:
            oldest = next(iter(self._peers.values()))
            if not self._expired(oldest, now):
                return
            self._peers.popitem(last=False)
