"""Concatenated SMS parts → whole messages (3GPP TS 23.040 §9.2.3.24.1), pure.

Parts are grouped by (sender, reference, total). A group is handed out once every sequence
number 1..total is there; a repeated part is ignored, also for a while after its group was
handed out (a modem that reports a message twice must not deliver it twice). A group whose
first part is older than ``timeout_s`` is given up by :meth:`Reassembler.expire`, which hands
the parts that did arrive to the caller. Time is the caller's (``now`` in seconds, any epoch
the caller keeps to): there is no clock here. :meth:`Reassembler.to_data` and
:meth:`Reassembler.from_data` turn the state into plain JSON-able data and back, so the daemon
can keep parts across a restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Assembled", "Part", "Reassembler"]

Key = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class Part:
    """Part ``sequence`` of ``total`` from ``sender``, concatenation ``reference``."""

    sender: str
    reference: int
    total: int
    sequence: int
    text: str

    @property
    def key(self) -> Key:
        return (self.sender, self.reference, self.total)


@dataclass(frozen=True, slots=True)
class Assembled:
    """A message made of its parts (complete) or of those that came before the timeout."""

    sender: str
    reference: int
    total: int
    text: str
    sequences: tuple[int, ...]
    first_seen: float

    @property
    def complete(self) -> bool:
        return len(self.sequences) == self.total


@dataclass(slots=True)
class _Group:
    first_seen: float
    texts: dict[int, str]


class Reassembler:
    """The parts waiting for their siblings. ``timeout_s``: how long a group waits."""

    def __init__(self, timeout_s: float = 24 * 3600.0) -> None:
        self.timeout_s = timeout_s
        self._groups: dict[Key, _Group] = {}
        self._done: dict[Key, float] = {}  # handed-out groups → when, to ignore repeats

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, part: Part, now: float) -> Assembled | None:
        """Take ``part``; the whole message when it was the last one missing, else None."""
        if not 1 <= part.sequence <= part.total:
            raise ValueError(f"sequence {part.sequence} outside 1..{part.total}")
        key = part.key
        if key in self._done:
            return None
        group = self._groups.setdefault(key, _Group(now, {}))
        if part.sequence in group.texts:
            return None
        group.texts[part.sequence] = part.text
        if len(group.texts) < part.total:
            return None
        del self._groups[key]
        self._done[key] = now
        return _assembled(key, group)

    def expire(self, now: float) -> list[Assembled]:
        """Give up the groups older than the timeout: what arrived of each, oldest first.
        Also forgets handed-out groups older than the timeout."""
        stale = [k for k, g in self._groups.items() if now - g.first_seen >= self.timeout_s]
        out = [_assembled(k, self._groups.pop(k)) for k in stale]
        for key in [k for k, at in self._done.items() if now - at >= self.timeout_s]:
            del self._done[key]
        for key in stale:
            self._done[key] = now
        return sorted(out, key=lambda a: a.first_seen)

    def to_data(self) -> dict[str, Any]:
        """The state as plain data (lists, dicts, str, int, float)."""
        return {
            "timeout_s": self.timeout_s,
            "groups": [
                {
                    "sender": k[0],
                    "reference": k[1],
                    "total": k[2],
                    "first_seen": g.first_seen,
                    "parts": {str(seq): text for seq, text in sorted(g.texts.items())},
                }
                for k, g in self._groups.items()
            ],
            "done": [[k[0], k[1], k[2], at] for k, at in self._done.items()],
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Reassembler:
        """The state :meth:`to_data` gave."""
        self = cls(float(data["timeout_s"]))
        for group in data.get("groups", ()):
            key = (str(group["sender"]), int(group["reference"]), int(group["total"]))
            texts = {int(seq): str(text) for seq, text in group["parts"].items()}
            self._groups[key] = _Group(float(group["first_seen"]), texts)
        for sender, reference, total, at in data.get("done", ()):
            self._done[(str(sender), int(reference), int(total))] = float(at)
        return self

    def parts(self) -> Iterable[Part]:
        """Every part waiting, group by group."""
        for (sender, reference, total), group in self._groups.items():
            for seq, text in sorted(group.texts.items()):
                yield Part(sender, reference, total, seq, text)


def _assembled(key: Key, group: _Group) -> Assembled:
    sequences = tuple(sorted(group.texts))
    text = "".join(group.texts[s] for s in sequences)
    return Assembled(key[0], key[1], key[2], text, sequences, group.first_seen)
