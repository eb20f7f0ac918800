"""The do-not-call list: a file of E.164 numbers, held in memory only as keyed hashes.

One number per line; blank lines and ``#`` comments (whole-line or trailing) are ignored.
A line that is not a phone number is reported (by line number, never its text, which may
be a mistyped number) and skipped; it never stops the rest of the list from loading. A
reload that cannot read the file keeps the list it had. With a default region
(``[compliance] default_region``), national spellings ('020 7946 0123') are read in it, so
they match the E.164 number a request is parsed to.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from simbank.bank.numbers import canonical
from simbank.errors import ConfigError
from simbank.store.secret import DestinationHasher


@dataclass(frozen=True, slots=True)
class DncLoad:
    """What one (re)load found."""

    numbers: int
    problems: tuple[str, ...]
    loaded: bool


class DoNotCallList:
    """Numbers never to call or text (as hashes under the install's secret)."""

    def __init__(
        self, hasher: DestinationHasher, path: Path | None = None, region: str | None = None
    ) -> None:
        self._hasher = hasher
        self.path = path
        self.region = region
        self._hashes: frozenset[str] = frozenset()
        self.problems: tuple[str, ...] = ()

    @classmethod
    def load(
        cls, path: Path | None, hasher: DestinationHasher, region: str | None = None
    ) -> DoNotCallList:
        """Load ``path`` (None: an empty list). An unreadable file is a configuration error."""
        dnc = cls(hasher, path, region)
        if path is not None:
            result = dnc.reload()
            if not result.loaded:
                raise ConfigError(f"do-not-call list: {result.problems[0]}")
        return dnc

    def reload(self) -> DncLoad:
        """Read the file again; on failure keep the current list and say why."""
        if self.path is None:
            return DncLoad(len(self._hashes), (), loaded=True)
        try:
            text = self.path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problem = f"{self.path}: cannot read: {exc}"
            return DncLoad(len(self._hashes), (problem,), loaded=False)
        hashes: set[str] = set()
        problems: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            try:
                hashes.add(self._hasher.hash(canonical(entry, self.region) or entry))
            except ValueError:
                problems.append(f"{self.path}:{number}: not an E.164 number, skipped")
                continue
            if self.region is not None and not entry.startswith(("+", "00")):
                # Read in the default region, and also as it always was (international
                # digits without the "+"): a list blocks too much rather than too little.
                with contextlib.suppress(ValueError):
                    hashes.add(self._hasher.hash(entry))
        self._hashes = frozenset(hashes)
        self.problems = tuple(problems)
        return DncLoad(len(hashes), self.problems, loaded=True)

    def contains(self, number: str) -> bool:
        """Whether ``number`` (any spelling of it) is on the list."""
        try:
            return self._hasher.hash(canonical(number, self.region) or number) in self._hashes
        except ValueError:
            return False

    def contains_hash(self, destination_hash: str) -> bool:
        """Whether a destination hash (as stored in the ledger) is on the list."""
        return destination_hash in self._hashes

    def __len__(self) -> int:
        return len(self._hashes)
