"""Sans-IO AT codec: bytes in, events out. No I/O, no asyncio, no clock.

The codec knows which command is pending (``send``) and uses it to tell a response line from an
unsolicited result code: a line whose prefix is the pending command's prefix (or the command's
own name for read/exec forms) belongs to the response; a line with a known URC name is a ``Urc``
even in the middle of a response (the 27.007/27.005 names of ``URC_NAMES``, and the vendor
names the drivers declare, given as ``urc_names``); any other line while a command is
pending is part of the response (bare answers such as ``AT+CGSN``). With nothing pending every
line is a ``Urc``, except a lone final result (``OK``/``ERROR``/``+CME ERROR``): the late answer
of a command that timed out is a ``Stray``, any other one a ``Desync``.

Out-of-step answers (modem-realism.md B18 "stray OK", D8, B1): a modem that sends one final
result more than asked for would pin each later answer on the next command for good. The codec
notices the evidence and re-attributes what it can; each notice is a ``Desync`` event (the
channel re-syncs the port before its next command):

* a final result with no command pending (and none timed out);
* with ``hold_bare``: a bare final for a query (``AT+CSQ``, ``AT+CREG?``, ``AT+CLCC``), or a
  final before the command's echo while the modem echoes, is *held*: if the command's own
  answer follows, the held final was a stray and the command gets its own answer; ``settle()``
  (the channel calls it once the line has been quiet) hands the held answer over, unless it
  is a bare ``OK`` to a query that cannot answer bare (``ANSWERED_QUERIES``): that command's
  answer is lost, and the codec gives it up;
* a line carrying the answer name of the previous command, which was answered with a bare
  ``OK``: that command's late answer; the final result that follows it is the previous
  command's too (a ``Stray``), and the pending command still gets its own answer.

The events and commands themselves are in :mod:`simbank.at.results` (re-exported here). This
file is past 400 lines because it is one state machine: framing and classification share the
pending command's state (the SMS prompt, a ``+CUSD`` quote left open, ``+CMGR`` text, a held
final), so splitting them would spread one set of invariants over two files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from simbank.at.results import (
    CALL_RESULTS,
    CTRL_Z,
    Command,
    Desync,
    Event,
    FinalResult,
    Garbage,
    Prompt,
    Response,
    ResultKind,
    Stray,
    Urc,
    line_name,
    parse_final,
)

__all__ = [
    "MAX_LINE",
    "MAX_RESPONSE_LINES",
    "SPONTANEOUS_ANSWERS",
    "TWO_LINE_URCS",
    "URC_NAMES",
    "AtCodec",
]

MAX_LINE: Final = 2048
"""Longest line (bytes, line end excluded) the codec frames by default. A longer one comes out as
one ``Garbage`` holding its first ``max_line`` bytes, and the rest up to the next line end is
dropped unseen: a stream of noise with no line end never grows the buffer past this."""
MAX_RESPONSE_LINES: Final = 4096
"""Most information lines one response keeps (an ``AT+CMGL`` of a full 255-message store is ~510
lines, ``AT+CLAC`` ~700). Later lines are dropped, with one ``Garbage`` saying so: a modem that
never sends its final result cannot grow memory (past ``MAX_RESPONSE_LINES * max_line`` bytes)
while the command waits for its timeout."""

_TERMINATOR = re.compile(rb"[\r\n]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_PROMPT: Final = b"> "

# Lines that are URCs even while a command is pending (unless the command asked for them):
# the standard ones (27.007 §7/§8/§10, 27.005 §3.4.1). A vendor's own URCs (Quectel +QIND,
# Huawei ^RSSI, SIMCom "SMS DONE"...) are declared by its driver (``urc_names`` in drivers/)
# and given to the codec as ``AtCodec(urc_names=...)`` (``drivers.port.open_port`` does).
URC_NAMES: Final = frozenset(
    {
        "+CREG", "+CGREG", "+CEREG", "+C5GREG", "+CPIN", "+CMTI", "+CMT", "+CDS", "+CDSI",
        "+CBM", "+CUSD", "+CLIP", "+CRING", "RING", "+CCWA", "+CSSI", "+CSSU", "+CIEV",
        "+CGEV", "+CTZV", "+CTZE", "+CLCC", "+CSQ", "+CFUN", "+CUSATP", "+CUSATEND",
    }
)  # fmt: skip
# URCs whose next line is their body (the PDU, or the text); a text-mode +CDS is one line.
TWO_LINE_URCS: Final = frozenset({"+CMT", "+CDS", "+CBM"})
# Answer lines that modems also send on their own the moment the state changes (the SIM
# coming up, a registration change, a call, a USSD reply): when such a line follows a held
# bare final and no second final comes before the line goes quiet, it was a URC and the held
# final the answer (modem-realism.md B16); only a second final makes the held one a stray.
SPONTANEOUS_ANSWERS: Final = frozenset(
    {"+CPIN", "+CREG", "+CGREG", "+CEREG", "+C5GREG", "+CLCC", "+CUSD", "+CMTI", "+CIEV"}
)
# URCs whose quoted text may span lines (USSD menus).
_QUOTED_TEXT: Final = frozenset({"+CUSD"})
# Answers whose next line is message text, taken verbatim (even "OK" or "RING").
_TEXT_BODY_ANSWERS: Final = frozenset({"+CMGR", "+CMGL"})


@dataclass(slots=True)
class _Pending:
    command: Command
    lines: list[str] = field(default_factory=list)
    prompted: bool = False
    overflowed: bool = False
    echoed: bool = False
    held_lines: int = 0  # lines kept when its final result was held
    owed: int = 0  # final results still due to the previous command (its late answer)

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

    def __init__(
        self, *, max_line: int = MAX_LINE, hold_bare: bool = False, urc_names: Iterable[str] = ()
    ) -> None:
        """``hold_bare``: hold a final result that may be a stray (see the module doc); whoever
        feeds the codec must then call ``settle()`` once the line has been quiet a moment.
        ``urc_names``: vendor URC names known from the start, besides ``URC_NAMES``."""
        if max_line < 2:
            raise ValueError("max_line must be at least 2")
        self._max_line = max_line
        self._urc_names = URC_NAMES | frozenset(urc_names)
        self._hold_bare = hold_bare
        self._held: FinalResult | None = None
        self._last_bare: Command | None = None  # answered bare OK; its answer may be late
        self._lost: Command | None = None  # given up by settle(); its answer may still come
        self._echoing = False  # the modem echoed the last command
        self._buf = bytearray()
        self._discarding = False
        self._pending: _Pending | None = None
        self._abandoned: Command | None = None
        self._urc_header: str | None = None  # +CMT/+CDS header awaiting its body line
        self._take_next = False  # the next line is +CMGR/+CMGL message text
        self._quoted: str | None = None  # a +CUSD line whose quoted text is still open
        self._events: list[Event] = []

    @property
    def urc_names(self) -> frozenset[str]:
        """The names of the lines taken as URCs even while a command is pending."""
        return self._urc_names

    @property
    def pending(self) -> Command | None:
        return self._pending.command if self._pending else None

    @property
    def holding(self) -> bool:
        """A final result for the pending command is held: call ``settle()`` after a quiet
        moment (no bytes for a short while) to hand it over."""
        return self._held is not None

    def settle(self) -> list[Event]:
        """The line went quiet while a final result was held.

        * Lines of the command's answer followed it, and the command always answers a line: the
          held final was a stray (a ``Desync``); the command stays pending for its final.
        * A bare ``OK`` to an execute-form query that always answers a line (``AT+CSQ``,
          ``ANSWERED_QUERIES``; a read form may answer bare, as a Gammu dump of ``AT+CREG?``
          shows): not its answer, and its own is late or lost. The command is given up (a ``Desync`` naming it) and
          its late answer, if it comes, is a ``Stray``.
        * Otherwise the held final is the command's answer (a ``Response``); lines after it
          were unsolicited (``AT+CLCC`` answered bare, then a ``+CLCC`` URC).
        """
        p, held = self._pending, self._held
        self._held = None
        if p is None or held is None:
            return []
        answer = p.command.answer_name
        # Lines after the held final, then quiet: the held one was a stray and the command's
        # own final is still to come — unless a URC may carry such lines (+CPIN right after
        # AT+CPIN? was answered CME 14): then they were unsolicited, the held final the answer.
        more = len(p.lines) > p.held_lines
        if more and answer is not None and answer not in SPONTANEOUS_ANSWERS:
            return [self._stray_held(p, held)]
        if held.kind is ResultKind.OK and not p.lines and p.command.answered_query:
            self._pending = None
            self._abandoned = self._lost = p.command
            self._take_next = False
            reason = f"a bare OK to {_label(p.command)}, its answer is late or lost"
            return [Desync(reason, held.raw, p.command)]
        self._events = []
        later = p.lines[p.held_lines :]
        del p.lines[p.held_lines :]
        self._finish(p, held)
        for line in later:  # came after the answer: unsolicited after all (a +CLCC URC)
            self._unsolicited(line)
        events, self._events = self._events, []
        return events

    def resynced(self) -> None:
        """The port is back in step (answers drained): forget who may still owe an answer."""
        self._abandoned = None
        self._last_bare = self._lost = None

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
        self._held = None
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
            p.echoed = True
            if self._held is not None:  # a final before the command's own echo: a stray
                held, self._held = self._held, None
                self._events.append(self._stray_held(p, held))
            return
        final = parse_final(line)
        if final is not None and (final.kind not in CALL_RESULTS.values() or p.command.dials):
            self._final(p, final, line)
            return
        name = line_name(line)
        if name in (p.command.prefix, p.command.name):
            self._keep(p, line)
            self._take_next = name in _TEXT_BODY_ANSWERS and not _text_mode_report(name, line)
        elif not p.lines and self._late(name):
            p.owed += 1  # the previous command's final result comes next
            self._events.append(Desync(_late_reason(name), line))
        elif name in self._urc_names or line in CALL_RESULTS:
            self._urc(name, line)
        else:
            self._keep(p, line)

    def _final(self, p: _Pending, final: FinalResult, line: str) -> None:
        if p.owed:
            p.owed -= 1
            self._events.append(Stray(line))  # the final of the late answer before it
            return
        held, self._held = self._held, None
        if held is not None:
            # two finals for one command: the first was not its own
            self._events.append(self._stray_held(p, held))
        if self._hold_bare and self._suspect(p, final):
            self._held = final
            p.held_lines = len(p.lines)
            return
        self._finish(p, final)

    def _suspect(self, p: _Pending, final: FinalResult) -> bool:
        """May ``final`` be a stray rather than ``p``'s answer? It came before the command's
        echo (the modem echoes), or bare where a query may answer lines (``AT+CSQ``,
        ``AT+CREG?``, ``AT+CLCC``; not a set command: ``AT+CUSD=1,...`` is answered bare)."""
        if self._echoing and not p.echoed:
            return True
        call_result = final.kind in CALL_RESULTS.values()
        return not p.lines and not call_result and p.command.name is not None

    def _stray_held(self, p: _Pending, held: FinalResult) -> Desync:
        return Desync(f"a final result before the answer to {_label(p.command)}", held.raw)

    def _finish(self, p: _Pending, final: FinalResult) -> None:
        self._pending = None
        self._echoing = p.echoed
        bare_ok = final.kind is ResultKind.OK and not p.lines
        self._last_bare = p.command if bare_ok and p.command.answer_name else None
        self._events.append(Response(p.command, tuple(p.lines), final))

    def _late(self, name: str) -> bool:
        """Is a line named ``name`` the late answer of the command answered bare OK last
        (or of the one ``settle()`` gave up, until ``resynced()``)?"""
        lost = self._lost
        if lost is not None and name == lost.answer_name:
            self._lost = None
            return True
        last = self._last_bare
        if last is None or name != last.answer_name:
            return False
        if name in self._urc_names and not last.answered_query:
            # a read form answered bare (a Gammu dump has AT+CREG? → OK): a +CREG line now
            # may well be a URC; only a query that cannot answer bare makes it a late answer
            return False
        self._last_bare = None  # one late answer per command
        return True

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
            if self._abandoned is not None:
                self._abandoned = None
                self._events.append(Stray(line))  # the answer of a timed-out command
            else:
                self._events.append(Desync("a final result with no command pending", line))
            return
        name = line_name(line)
        owner = self._lost or self._last_bare
        if self._late(name):
            self._abandoned = owner  # its final result follows
            self._events.append(Desync(_late_reason(name), line))
            return
        if self._abandoned is not None and name not in self._urc_names and line not in CALL_RESULTS:
            self._events.append(Stray(line))  # info line of the timed-out command
            return
        self._urc(name, line)

    def _urc(self, name: str, line: str) -> None:
        if name in TWO_LINE_URCS and not _one_line_cds(name, line):
            self._urc_header = line
        else:
            self._events.append(Urc(name, line))


def _text_mode_report(name: str, line: str) -> bool:
    """A status report read in text mode has no text line (27.005 §3.4.3): ``+CMGR: <stat>,
    <fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>`` (``+CMGL`` with ``<index>`` first). Told from
    a message by the bare ``<fo>`` where a message has its quoted address, and from a PDU-mode
    header (``<stat>,[<alpha>],<length>``) by its seven or more fields."""
    fields = [""]
    quoted = False
    for char in line.partition(":")[2]:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            fields.append("")
            continue
        fields[-1] += char
    skip = 2 if name == "+CMGL" else 1
    return (
        len(fields) >= skip + 7
        and fields[skip].strip().isascii()
        and fields[skip].strip().isdecimal()
    )


def _one_line_cds(name: str, line: str) -> bool:
    """A text-mode ``+CDS`` (27.005 §3.4.1: ``<fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>``) is
    one line; only the PDU-mode ``+CDS: <length>`` has a second (the PDU)."""
    return name == "+CDS" and line.count(",") >= 2


def _label(command: Command) -> str:
    """A command named without its arguments (numbers, texts): ``+CSQ``, ``ATD``, ``ATE0``."""
    if command.name is not None:
        return command.name
    head = command.text.split("=")[0]
    return "ATD" if head.upper().startswith("ATD") else head


def _late_reason(name: str) -> str:
    return f"a late {name} answer to an earlier command"
