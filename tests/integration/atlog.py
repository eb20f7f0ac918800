"""What the simulated modems were sent, and answers scripted over the simulator's own: the
``at_log`` fixture (import it into a test module) patches ``SimulatedModem._handle``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from simbank.simulator.at_server import CommandLine
from simbank.simulator.modem import Reply, SimulatedModem


@dataclass
class AtLog:
    """Every command line each simulated modem received, in order, with the time it arrived;
    ``fail``/``fail_slot``/``answer`` script answers the simulator would not give."""

    lines: list[tuple[float, str, str]] = field(default_factory=list)  # (time, modem, line)
    fail: dict[str, tuple[str, ...]] = field(default_factory=dict)  # modem → prefixes → ERROR
    fail_slot: dict[str, int] = field(default_factory=dict)  # modem → fail only in this slot
    answer: dict[tuple[str, str], Reply] = field(default_factory=dict)  # (modem, line) → answer
    #: Modems that answer nothing (a firmware hang that still reads: what was sent is logged).
    mute: set[str] = field(default_factory=set)

    def times(self, needle: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [t for t, _, text in self.lines if needle in text and since <= t <= until]

    def texts(self, prefix: str) -> list[str]:
        return [text for _, _, text in self.lines if text.startswith(prefix)]

    def of(self, modem: str) -> list[str]:
        return [text for _, mid, text in self.lines if mid == modem]

    def scripted(self, modem: SimulatedModem, text: str) -> Reply | None:
        in_slot = modem.active_slot == self.fail_slot.get(modem.id, modem.active_slot)
        if in_slot and text.upper().startswith(self.fail.get(modem.id, ("\0",))):
            return Reply(final="ERROR")
        return self.answer.get((modem.id, text.upper()))


@pytest.fixture
def at_log(monkeypatch: pytest.MonkeyPatch) -> AtLog:
    log = AtLog()
    handle = SimulatedModem._handle

    def recording(self: SimulatedModem, event: Any) -> Any:
        if isinstance(event, CommandLine):
            log.lines.append((time.monotonic(), self.id, event.text))
            if self.id in log.mute:
                return None
            scripted = log.scripted(self, event.text)
            if scripted is not None:
                return scripted
        return handle(self, event)

    monkeypatch.setattr(SimulatedModem, "_handle", recording)
    return log
