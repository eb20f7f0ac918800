"""Sans-IO AT codec: bytes in, events out. No I/O, no asyncio, no clock.

The codec knows which command is pending (``send``) and uses it to tell a response line from an
unsolicited result code: a line whose prefix is the pending command's prefix (or the command's
own name for read/exec forms) belongs to the response; a line with a known URC prefix is a
``Urc`` even in the middle of a response; any other line while a command is pending is part of
the response (bare answers such as ``AT+CGSN``). With nothing pending every line is a ``Urc``,
except a lone final result (``OK``/``ERROR``/``+CME ERROR``), which is a ``Stray``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from simbank.at.errors import describe, error_code
from simbank.errors import CommandError, ProtocolGarbage

SHORT: Final = 3.0
MEDIUM: Final = 12.0
LONG: Final = 40.0
CTRL_Z: Final = b"\x1a"
MAX_LINE: Final = 2048
"""Longest line (bytes, line end excluded) the codec frames by default. A longer one comes out as
one ``Garbage`` holding its first ``max_line`` bytes, and the rest up to the next line end is
dropped unseen: a stream of noise with no line end never grows the buffer past this."""
MAX_RESPONSE_LINES: Final = 4096
"""Most information lines one response keeps (an ``AT+CMGL`` of a full 255-message store is ~510
lines, ``AT+CLAC`` ~700). Later lines are dropped, with one ``Garbage`` saying so: a modem that
never sends its final result cannot grow memory (past ``MAX_RESPONSE_LINES * max_line`` bytes)
while the command waits for its timeout."""


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
        """Return self if the final result is OK/CONNECT, else raise CommandError."""
        if self.final.ok:
            return self
        sms = self.final.kind is ResultKind.CMS_ERROR
        detail = self.final.raw
        if self.final.code is not None and self.final.kind in (
            ResultKind.CME_ERROR,
            ResultKind.CMS_ERROR,
        ):
            detail = f"{self.final.raw} ({describe(self.final.code, sms=sms)})"
        raise CommandError(
            f"{self.command.text.split('=')[0]} failed: {detail}",
            raw=self.final.raw,
            code=self.final.code,
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


Event = Response | Urc | Prompt | Garbage | Stray

_EXTENDED = re.compile(r"AT([+^$#*%][A-Za-z0-9]+)", re.IGNORECASE)
_TERMINATOR = re.compile(rb"[\r\n]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_PROMPT: Final = b"> "

# Lines that are URCs even while a command is pending (unless the command asked for them).
# Sources: 27.007 §7/§8/§10, 27.005 §3.4.1, Quectel EC25, SIMCom SIM7600 (incl. AT+AUTOCSQ,
# which reports "+CSQ: <rssi>,<ber>" unsolicited), Huawei ME909s, Fibocom L610 manuals.
URC_NAMES: Final = frozenset(
    {
        # 27.007 / 27.005
        "+CREG", "+CGREG", "+CEREG", "+C5GREG", "+CPIN", "+CMTI", "+CMT", "+CDS", "+CDSI",
        "+CBM", "+CUSD", "+CLIP", "+CRING", "RING", "+CCWA", "+CSSI", "+CSSU", "+CIEV",
        "+CGEV", "+CTZV", "+CTZE", "+CLCC", "+CSQ", "+CFUN", "+CUSATP", "+CUSATEND",
        # Quectel
        "+QIND", "+QUSIM", "RDY", "POWERED DOWN", "+QSIMSTAT", "+QNITZ",
        # SIMCom
        "SMS DONE", "PB DONE", "Call Ready", "SMS Ready", "+STIN", "*PSUTTZ", "DST",
        "+PACSP", "+SIMCARD",
        # Fibocom
        "+SIM READY", "+PBREADY", "+SIM DROP",
        # Huawei
        "^RSSI", "^MODE", "^BOOT", "^SIMST", "^SRVST", "^HCSQ", "^CEND", "^ORIG", "^CONF",
        "^CONN", "^STIN", "^NDISSTAT", "^DSFLOWRPT", "^NWTIME", "^CERSSI", "^SMMEMFULL",
        # Cinterion
        "^SYSSTART",
    }
)  # fmt: skip
TWO_LINE_URCS: Final = frozenset({"+CMT", "+CDS", "+CBM"})
CALL_RESULTS: Final = {
    "NO CARRIER": ResultKind.NO_CARRIER,
    "BUSY": ResultKind.BUSY,
    "NO ANSWER": ResultKind.NO_ANSWER,
    "NO DIALTONE": ResultKind.NO_DIALTONE,
}
# Huawei / older modems end an unknown command with these instead of ERROR.
_ERROR_WORDS: Final = frozenset({"ERROR", "COMMAND NOT SUPPORT", "TOO MANY PARAMETERS"})
# URCs whose quoted text may span lines (USSD menus).
_QUOTED_TEXT: Final = frozenset({"+CUSD"})
# Answers whose next line is message text, taken verbatim (even "OK" or "RING").
_TEXT_BODY_ANSWERS: Final = frozenset({"+CMGR", "+CMGL"})


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


@dataclass(slots=True)
class _Pending:
    command: Command
    lines: list[str] = field(default_factory=list)
    prompted: bool = False
    overflowed: bool = False

    def add(self, line: str) -> Garbage | None:
        """Keep an information line; past MAX_RESPONSE_LINES drop it (Garbage the first time)."""
        if len(self.lines) < MAX_RESPONSE_LINES:
            self.lines.append(line)
            return None
        if self.overflowed:
            return None
        self.overflowed = True
        return Garbage(
            line.encode(), f"response longer than {MAX_RESPONSE_LINES} lines; later lines dropped"
        )


class AtCodec:
    """Frames the byte stream into lines and classifies them against the pending command."""

    def __init__(self, *, max_line: int = MAX_LINE) -> None:
        if max_line < 2:
            raise ValueError("max_line must be at least 2")
        self._max_line = max_line
        self._buf = bytearray()
        self._discarding = False
        self._pending: _Pending | None = None
        self._abandoned: Command | None = None
        self._urc_header: str | None = None  # +CMT/+CDS header awaiting its body line
        self._take_next = False  # the next line is +CMGR/+CMGL message text
        self._quoted: str | None = None  # a +CUSD line whose quoted text is still open
        self._events: list[Event] = []

    @property
    def pending(self) -> Command | None:
        return self._pending.command if self._pending else None

    def send(self, command: Command) -> bytes:
        """Mark ``command`` pending and return the bytes to write."""
        if self._pending is not None:
            raise RuntimeError(f"{self._pending.command.text!r} is still pending")
        if any(c in command.text for c in "\r\n\x1a\x1b"):
            raise ValueError("a command text must not hold CR, LF, Ctrl-Z or ESC")
        data = command.text.encode("ascii") + b"\r"
        if command.payload is not None:
            command.payload.encode("ascii")
            if "\x1a" in command.payload or "\x1b" in command.payload:
                raise ValueError("a payload must not hold Ctrl-Z or ESC")
        self._pending = _Pending(command)
        self._abandoned = None
        self._take_next = False
        return data

    def payload(self) -> bytes:
        """After a Prompt: the payload followed by Ctrl-Z."""
        if self._pending is None or self._pending.command.payload is None:
            raise RuntimeError("no pending command with a payload")
        return self._pending.command.payload.encode("ascii") + CTRL_Z

    def abandon(self) -> None:
        """The pending command timed out; its late answer will come out as Stray."""
        if self._pending is not None:
            self._abandoned = self._pending.command
        self._pending = None
        self._take_next = False

    # -- framing ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Consume bytes, return the events they complete. Never raises."""
        self._events = []
        pos = 0
        size = len(data)
        while pos < size:
            match = _TERMINATOR.search(data, pos)
            end = match.start() if match else size
            self._append(data[pos:end])
            if match is None:
                break
            raw = bytes(self._buf)
            try:
                self._end_line()
            except Exception as exc:  # noqa: BLE001 - feed() must never raise; keep the evidence
                self._reset_line_state()
                self._events.append(Garbage(raw, f"codec error: {exc!r}"))
            pos = end + 1
        events, self._events = self._events, []
        return events

    def _reset_line_state(self) -> None:
        self._buf.clear()
        self._discarding = False
        self._urc_header = None
        self._take_next = False
        self._quoted = None

    def _prompt_possible(self) -> bool:
        p = self._pending
        return p is not None and p.command.payload is not None and not p.prompted

    def _append(self, segment: bytes) -> None:
        if self._discarding or not segment:
            return
        if self._prompt_possible() and len(self._buf) < len(_PROMPT):
            have = len(self._buf)
            candidate = bytes(self._buf) + segment[: len(_PROMPT) - have]
            if candidate == _PROMPT:
                assert self._pending is not None
                self._pending.prompted = True
                self._buf.clear()
                self._events.append(Prompt())
                segment = segment[len(_PROMPT) - have :]
                if not segment:
                    return
        if len(self._buf) + len(segment) > self._max_line:
            raw = (bytes(self._buf) + segment)[: self._max_line]
            self._events.append(Garbage(raw, f"line longer than {self._max_line} bytes"))
            self._buf.clear()
            self._discarding = True
            return
        self._buf += segment

    def _end_line(self) -> None:
        if self._discarding:
            self._discarding = False
            return
        if not self._buf:
            return
        raw = bytes(self._buf)
        self._buf.clear()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._events.append(Garbage(raw, "not UTF-8"))
            return
        p = self._pending
        if p is not None and p.prompted:
            text = text.replace("\x1a", "")  # the echoed Ctrl-Z after an SMS text
        if _CONTROL.search(text):
            self._events.append(Garbage(raw, "control characters"))
            return
        if self._quoted is not None:
            # a +CUSD text with line breaks inside its quotes: join until the quote closes,
            # but a final result or too much text ends the wait (the quote was malformed)
            held, self._quoted = self._quoted, None
            if parse_final(text.strip()) is not None or len(held) + len(text) >= self._max_line:
                self._line(held.strip(), held)
            else:
                text = f"{held}\n{text}"
        line = text.strip()
        if line_name(line) in _QUOTED_TEXT and line.count('"') % 2:
            self._quoted = text
            return
        if line:
            self._line(line, text)

    # -- classification --------------------------------------------------------------------

    def _line(self, line: str, verbatim: str) -> None:
        if self._urc_header is not None:
            header, self._urc_header = self._urc_header, None
            self._events.append(Urc(line_name(header), header, verbatim))
            return
        p = self._pending
        if p is None:
            self._unsolicited(line)
            return
        if self._take_next:
            self._take_next = False
            self._keep(p, verbatim)
            return
        if self._is_echo(p, line):
            return
        final = parse_final(line)
        if final is not None and (final.kind not in CALL_RESULTS.values() or p.command.dials):
            self._pending = None
            self._events.append(Response(p.command, tuple(p.lines), final))
            return
        name = line_name(line)
        if name in (p.command.prefix, p.command.name):
            self._keep(p, line)
            self._take_next = name in _TEXT_BODY_ANSWERS
        elif name in URC_NAMES or line in CALL_RESULTS:
            self._urc(name, line)
        else:
            self._keep(p, line)

    def _keep(self, p: _Pending, line: str) -> None:
        dropped = p.add(line)
        if dropped is not None:
            self._events.append(dropped)

    @staticmethod
    def _is_echo(p: _Pending, line: str) -> bool:
        if line == p.command.text:
            return True
        payload = p.command.payload
        if not p.prompted or payload is None:
            return False
        # With echo on the modem repeats the SMS text, sometimes re-prompting each line.
        return line.removeprefix(">").strip() in {s.strip() for s in payload.splitlines()}

    def _unsolicited(self, line: str) -> None:
        final = parse_final(line)
        if final is not None and final.kind not in CALL_RESULTS.values():
            self._abandoned = None
            self._events.append(Stray(line))
            return
        name = line_name(line)
        if self._abandoned is not None and name not in URC_NAMES and line not in CALL_RESULTS:
            self._events.append(Stray(line))  # info line of the timed-out command
            return
        self._urc(name, line)

    def _urc(self, name: str, line: str) -> None:
        if name in TWO_LINE_URCS:
            self._urc_header = line
        else:
            self._events.append(Urc(name, line))
