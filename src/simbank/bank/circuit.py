"""The gateway's circuit breaker (DESIGN §4): too many blocks in a window pause all traffic.

When ``blocks`` different SIMs are blocked within ``window_s`` seconds (both ends inclusive:
a block exactly ``window_s`` before the latest one still counts), the circuit opens and stays
open, whatever the clock does, until an operator resumes traffic with :meth:`close`. Closing
acknowledges the blocks seen so far: counting starts afresh. Pure: ``now`` is passed in;
:meth:`to_state` / :meth:`from_state` persist it (JSON-ready) in the ledger across restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """One blocked SIM and when it was blocked (epoch seconds)."""

    iccid: str
    at: float


class CircuitBreaker:
    """Opens when ``blocks`` distinct SIMs are blocked within ``window_s``; closes on resume."""

    def __init__(self, blocks: int, window_s: float) -> None:
        if blocks < 1:
            raise ValueError(f"blocks must be at least 1, not {blocks}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, not {window_s}")
        self.blocks = blocks
        self.window_s = window_s
        self._records: list[BlockRecord] = []
        self._opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        """True while outbound traffic is paused."""
        return self._opened_at is not None

    @property
    def opened_at(self) -> float | None:
        """When the circuit opened, or ``None`` while it is closed."""
        return self._opened_at

    @property
    def records(self) -> tuple[BlockRecord, ...]:
        """The blocks counted since the last resume, oldest first (pruned to the window)."""
        return tuple(self._records)

    def blocks_in_window(self, now: float) -> int:
        """How many different SIMs were blocked in ``[now - window_s, now]``."""
        return len({r.iccid for r in self._records if 0 <= now - r.at <= self.window_s})

    def record_block(self, iccid: str, now: float) -> bool:
        """Count a block; True exactly when this block opens the circuit."""
        self._records = [r for r in self._records if now - r.at <= self.window_s]
        self._records.append(BlockRecord(iccid, now))
        if self.is_open or self.blocks_in_window(now) < self.blocks:
            return False
        self._opened_at = now
        return True

    def close(self) -> None:
        """An operator resumed traffic: close the circuit and forget the blocks counted."""
        self._opened_at = None
        self._records.clear()

    def to_state(self) -> dict[str, Any]:
        """``{"opened_at": float | None, "blocks": [{"iccid", "at"}, ...]}``."""
        return {
            "opened_at": self._opened_at,
            "blocks": [{"iccid": r.iccid, "at": r.at} for r in self._records],
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], *, blocks: int, window_s: float
    ) -> CircuitBreaker:
        """A breaker with the persisted state and the (possibly changed) configured limits.
        An open circuit stays open: only an operator closes it."""
        breaker = cls(blocks, window_s)
        opened_at = state.get("opened_at")
        if opened_at is not None:
            breaker._opened_at = _number(opened_at, "opened_at")
        entries = state.get("blocks", [])
        if not isinstance(entries, list):
            raise TypeError(f"'blocks' must be a list, not {entries!r}")
        for entry in entries:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("iccid"), str):
                raise TypeError(f"malformed block record {entry!r}")
            breaker._records.append(BlockRecord(entry["iccid"], _number(entry.get("at"), "at")))
        breaker._records.sort(key=lambda r: r.at)
        return breaker


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name!r} must be a number, not {value!r}")
    return float(value)
