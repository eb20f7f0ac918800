"""What the AT codec hands out: commands, their responses and final results, URCs and the
other events, and the two line rules every layer shares (``line_name``, ``parse_final``).

Pure data and pure functions (no I/O): the codec produces these, the channel routes them, the
drivers read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from simbank.at.codes import describe, error_code, is_retryable, sim_problem
from simbank.errors import CommandError, ProtocolGarbage, SimStateError

SHORT: Final = 3.0
MEDIUM: Final = 12.0
LONG: Final = 40.0
CTRL_Z: Final = b"\x1a"


class ResultKind(StrEnum):
    OK = "OK"
    ERROR = "ERROR"
    CME_ERROR = "+CME ERROR"
    CMS_ERROR = "+CMS ERROR"
    NO_CARRIER = "NO CARRIER"
    BUSY = "BUSY"
    NO_ANSWER = "NO ANSWER"
    NO_DIALTONE = "NO DIALTONE"
    CONNECT = "CONNECT"


@dataclass(frozen=True, slots=True)
class FinalResult:
    kind: ResultKind
    code: int | None
    raw: str

    @property
    def ok(self) -> bool:
        return self.kind in (ResultKind.OK, ResultKind.CONNECT)


@dataclass(frozen=True, slots=True)
class Command:
    text: str
    prefix: str | None = None
    timeout: float = SHORT
    payload: str | None = None
    sensitive: bool = False
    #: The driver knows this execute form always answers a line (a vendor query such as
    #: ``AT+QCCID``): the codec need not know the vendor's names (``ANSWERED_QUERIES`` holds
    #: the standard ones).
    answers: bool = False

    @property
    def name(self) -> str | None:
        """The info-line prefix this command's own answer carries: ``AT+CREG?`` → ``+CREG``.

        Only for read (``?``), test (``=?``) and execute forms; a set command (``AT+CREG=2``)
        answers ``OK`` and a ``+CREG:`` line meanwhile is a URC.
        """
        match = _EXTENDED.match(self.text)
        if match is None:
            return None
        rest = self.text[match.end() :]
        if rest in ("", "?", "=?"):
            return match.group(1).upper()
        return None

    @property
    def answer_name(self) -> str | None:
        """The information line this command's answer normally carries before ``OK``:
        ``AT+CREG?`` → ``+CREG``, ``AT+CSQ`` → ``+CSQ``, ``AT+CICCID`` (prefix ``+ICCID``) →
        ``+ICCID``. None when a bare ``OK`` is a whole answer (``AT+CFUN=1``, ``AT+CLCC``)."""
        own = self.name
        if own is None:
            return None
        read = self.text.endswith("?") and not self.text.endswith("=?")
        if read or self.answered_query:
            return self.prefix or own
        return None

    @property
    def answered_query(self) -> bool:
        """The execute form of a query that always answers a line (``AT+CSQ``, not the test
        form ``AT+CESQ=?``, which a modem may answer with a bare ``OK``)."""
        known = self.answers or self.name in ANSWERED_QUERIES
        return known and "=" not in self.text and "?" not in self.text

    @property
    def dials(self) -> bool:
        """ATD/ATA/ATO and data commands: NO CARRIER/BUSY/... are this command's result."""
        upper = self.text.upper()
        return upper.startswith(("ATD", "ATA", "ATO", "AT+CGDATA"))


@dataclass(frozen=True, slots=True)
class Response:
    command: Command
    lines: tuple[str, ...]
    final: FinalResult

    @property
    def ok(self) -> bool:
        return self.final.ok

    def values(self, prefix: str | None = None) -> list[str]:
        """Every line with ``prefix`` (default: the command's prefix), prefix and ``: `` cut.

        With no prefix at all (a bare answer such as AT+CGSN) every line is returned whole.
        """
        want = prefix or self.command.prefix
        if want is None:
            own = self.command.name
            if own is None or not any(line_name(line) == own for line in self.lines):
                return list(self.lines)
            want = own
        return [
            line[len(want) :].lstrip().removeprefix(":").strip()
            for line in self.lines
            if line_name(line) == want
        ]

    def value(self, prefix: str | None = None) -> str:
        """The first line with ``prefix`` (see ``values``); ProtocolGarbage if there is none."""
        found = self.values(prefix)
        if not found:
            want = prefix or self.command.prefix or "a line"
            raise ProtocolGarbage(
                f"{self.command.text.split('=')[0]}: no {want} in the answer",
                raw="\n".join((*self.lines, self.final.raw)),
            )
        return found[0]

    def raise_for_error(self) -> Response:
        """Return self if the final result is OK/CONNECT, else raise: :class:`SimStateError`
        when the code is in a SIM set of ``at.codes`` (locked, absent, blocked, fault), else
        :class:`CommandError` marked ``retryable`` from the retryable sets."""
        if self.final.ok:
            return self
        sms = self.final.kind is ResultKind.CMS_ERROR
        detail = self.final.raw
        if self.final.code is not None and self.final.kind in (
            ResultKind.CME_ERROR,
            ResultKind.CMS_ERROR,
        ):
            detail = f"{self.final.raw} ({describe(self.final.code, sms=sms)})"
        message = f"{self.command.text.split('=')[0]} failed: {detail}"
        code = self.final.code
        problem = sim_problem(code, sms=sms)
        if problem is not None:
            raise SimStateError(
                message, problem=problem.value, raw=self.final.raw, code=code, sms=sms
            )
        raise CommandError(
            message, raw=self.final.raw, code=code, sms=sms, retryable=is_retryable(code, sms=sms)
        )


@dataclass(frozen=True, slots=True)
class Urc:
    name: str
    text: str
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    pass


@dataclass(frozen=True, slots=True)
class Garbage:
    raw: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Stray:
    line: str


@dataclass(frozen=True, slots=True)
class Desync:
    """Evidence that answers and commands are out of step: ``line`` cannot belong to the
    command it arrived for (or arrived with no command pending)."""

    reason: str
    line: str
    command: Command | None = None
    """The pending command whose answer is lost (the codec gave it up): send it again."""


Event = Response | Urc | Prompt | Garbage | Stray | Desync

_EXTENDED = re.compile(r"AT([+^$#*%][A-Za-z0-9]+)", re.IGNORECASE)
CALL_RESULTS: Final = {
    "NO CARRIER": ResultKind.NO_CARRIER,
    "BUSY": ResultKind.BUSY,
    "NO ANSWER": ResultKind.NO_ANSWER,
    "NO DIALTONE": ResultKind.NO_DIALTONE,
}
# Execute-form queries that always answer an information line (27.007 §5, §8.5, §8.69; vendor
# ICCID/signal queries): a bare OK to one of these is somebody else's OK. Read forms (``?``)
# normally answer one too, but not always (Gammu tests/at-creg/empty.dump: AT+CREG? → OK).
# Test forms may not (``AT+CEER=?`` is a bare OK), nor set and other execute forms
# (``AT+CLCC`` with no call, ``AT+CHUP``, an empty ``AT+CEER`` on some firmware).
ANSWERED_QUERIES: Final = frozenset(
    {
        "+CSQ", "+CESQ", "+CGSN", "+CIMI", "+CGMI", "+CGMM", "+CGMR", "+GSN", "+GMI", "+GMM",
        "+GMR", "+CBC",
    }
)  # fmt: skip
# Huawei / older modems end an unknown command with these instead of ERROR.
_ERROR_WORDS: Final = frozenset({"ERROR", "COMMAND NOT SUPPORT", "TOO MANY PARAMETERS"})


def line_name(line: str) -> str:
    """``"+CREG: 1"`` → ``"+CREG"``; ``"^RSSI:15"`` → ``"^RSSI"``; ``"RING"`` → ``"RING"``."""
    head, sep, _ = line.partition(":")
    return head.strip() if sep else line.strip()


def parse_final(line: str) -> FinalResult | None:
    """The final result a line stands for, or None. Call results (BUSY...) included."""
    if line == "OK":
        return FinalResult(ResultKind.OK, None, line)
    if line in _ERROR_WORDS:
        return FinalResult(ResultKind.ERROR, None, line)
    for kind, sms in ((ResultKind.CME_ERROR, False), (ResultKind.CMS_ERROR, True)):
        if line.startswith(kind.value):
            rest = line[len(kind.value) :].lstrip().removeprefix(":")
            return FinalResult(kind, error_code(rest, sms=sms), line)
    if line in CALL_RESULTS:
        return FinalResult(CALL_RESULTS[line], None, line)
    if line == "CONNECT" or line.startswith("CONNECT "):
        return FinalResult(ResultKind.CONNECT, None, line)
    return None
