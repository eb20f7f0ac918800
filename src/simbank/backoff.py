"""Jittered exponential backoff, owned by whoever reconnects (the caller owns reconnect)."""

from __future__ import annotations

import random


class Backoff:
    """``next()`` gives delays doubling from ``initial`` to ``maximum``, each jittered ±20 %."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, jitter: float = 0.2) -> None:
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self._current = initial

    def next(self) -> float:
        delay = self._current * random.uniform(1 - self.jitter, 1 + self.jitter)
        self._current = min(self._current * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._current = self.initial
