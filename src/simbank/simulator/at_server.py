"""Server-side AT framing and parsing (sans-IO): bytes from the client in, events out.

The modem side of the wire: command lines end with CR (S3), LF is ignored, backspace edits
the line, the line buffer is bounded. After the modem sends the SMS prompt ``> `` the framer
switches to text mode until Ctrl-Z (send) or ESC (cancel).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

CR = 0x0D
LF = 0x0A
BACKSPACE = 0x08
CTRL_Z = 0x1A
ESC = 0x1B

MAX_LINE = 560  # 27.007 requires at least 80; real modems accept ~556
MAX_SMS_TEXT = 1600
DIAL_RE = re.compile(r"^\+?[0-9*#]{1,40}$")  # a dialled number or SMS destination


class Kind(enum.Enum):
    """How a command was invoked."""

    EXEC = "exec"  # AT+CSQ, ATD..., ATE0
    SET = "set"  # AT+CREG=2
    READ = "read"  # AT+CREG?
    TEST = "test"  # AT+CREG=?


@dataclass(frozen=True)
class Command:
    """One command out of a command line (``name`` upper-case, e.g. ``+CREG``, ``D``, ``E``)."""

    name: str
    kind: Kind
    args: tuple[str, ...] = ()
    raw: str = ""

    def arg(self, index: int, default: str | None = None) -> str | None:
        """The argument at ``index`` (quotes removed), or ``default`` if absent/empty."""
        if index < len(self.args) and self.args[index] != "":
            return self.args[index]
        return default

    def int_arg(self, index: int, default: int | None = None) -> int | None:
        """The argument at ``index`` as int; ``ValueError`` if it is not a number."""
        value = self.arg(index)
        if value is None:
            return default
        return int(value, 10)


@dataclass(frozen=True)
class CommandLine:
    """A complete command line (without the CR)."""

    text: str


@dataclass(frozen=True)
class Overflow:
    """A command line longer than ``MAX_LINE`` was discarded."""


@dataclass(frozen=True)
class SmsText:
    """The SMS body typed after the prompt, ended with Ctrl-Z."""

    text: str


@dataclass(frozen=True)
class SmsCancelled:
    """The SMS prompt was left with ESC."""


Event = CommandLine | Overflow | SmsText | SmsCancelled


class AtSyntaxError(ValueError):
    """A command line that cannot be parsed."""


@dataclass
class LineFramer:
    """Bytes in, ``Event``s out. Bounded: never holds more than ``MAX_LINE``/``MAX_SMS_TEXT``."""

    text_mode: bool = False
    _line: bytearray = field(default_factory=bytearray)
    _overflow: bool = False

    def enter_text_mode(self) -> None:
        """Called when the modem sends the ``> `` prompt."""
        self.text_mode = True
        self._line.clear()
        self._overflow = False

    def feed(self, data: bytes) -> list[Event]:
        """Feed received bytes; return the completed events in order."""
        events: list[Event] = []
        for byte in data:
            event = self._feed_text(byte) if self.text_mode else self._feed_command(byte)
            if event is not None:
                events.append(event)
        return events

    def _feed_command(self, byte: int) -> Event | None:
        if byte == CR:
            if self._overflow:
                self._overflow = False
                self._line.clear()
                return Overflow()
            text = self._line.decode("latin-1").strip()
            self._line.clear()
            return CommandLine(text) if text else None
        if byte in (LF, 0):
            return None
        if byte in (BACKSPACE, 0x7F):
            if self._line:
                del self._line[-1]
            return None
        if len(self._line) >= MAX_LINE:
            self._overflow = True
            return None
        self._line.append(byte)
        return None

    def _feed_text(self, byte: int) -> Event | None:
        if byte == CTRL_Z:
            text = self._line.decode("latin-1")
            self._line.clear()
            self.text_mode = False
            return SmsText(text)
        if byte == ESC:
            self._line.clear()
            self.text_mode = False
            return SmsCancelled()
        if len(self._line) < MAX_SMS_TEXT:
            self._line.append(byte)
        return None


def split_args(text: str) -> tuple[str, ...]:
    """Split ``1,"a,b",3`` into ``("1", "a,b", "3")`` (quotes removed, spaces trimmed)."""
    if text == "":
        return ()
    args: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quoted:
        raise AtSyntaxError("unterminated string")
    args.append("".join(current).strip())
    return tuple(args)


def _extended(body: str) -> Command:
    """Parse ``+CREG=2`` / ``^ICCID?`` / ``+CSQ`` / ``+CREG=?``."""
    index = 1
    while index < len(body) and (body[index].isalnum() or body[index] in "_"):
        index += 1
    name = body[:index].upper()
    if len(name) < 2:
        raise AtSyntaxError(f"bad command name {body!r}")
    rest = body[index:]
    if rest == "":
        return Command(name, Kind.EXEC, (), body)
    if rest == "?":
        return Command(name, Kind.READ, (), body)
    if rest == "=?":
        return Command(name, Kind.TEST, (), body)
    if rest.startswith("="):
        return Command(name, Kind.SET, split_args(rest[1:]), body)
    raise AtSyntaxError(f"bad command syntax {body!r}")


def _split_extended(text: str) -> tuple[str, str]:
    """Return (this extended command, the rest after ``;``), honouring quotes."""
    quoted = False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            return text[:index], text[index + 1 :]
    if quoted:
        raise AtSyntaxError("unterminated string")
    return text, ""


def _s_register(rest: str) -> tuple[Command, str]:
    """``S0=0`` / ``S3?`` (after the ``S``): an S-register read or write."""
    digits = ""
    while rest and rest[0].isdigit():
        digits += rest[0]
        rest = rest[1:]
    if not digits:
        raise AtSyntaxError("bad S-register")
    name = "S" + digits
    if rest.startswith("?"):
        return Command(name, Kind.READ, (), name + "?"), rest[1:]
    if rest.startswith("="):
        rest = rest[1:]
        value = ""
        while rest and rest[0].isdigit():
            value += rest[0]
            rest = rest[1:]
        return Command(name, Kind.SET, (value,), f"{name}={value}"), rest
    return Command(name, Kind.EXEC, (), name), rest


def parse_line(line: str) -> list[Command]:
    """Parse one command line (``AT...``) into its commands; ``AtSyntaxError`` if garbled."""
    stripped = line.strip()
    if len(stripped) < 2 or stripped[:2].upper() != "AT":
        raise AtSyntaxError(f"not an AT command: {line!r}")
    rest = stripped[2:]
    commands: list[Command] = []
    if rest == "":
        return [Command("", Kind.EXEC, (), "AT")]
    while rest:
        head = rest[0]
        if head in " ;":
            rest = rest[1:]
            continue
        if head in "+^$%#*":
            body, rest = _split_extended(rest)
            commands.append(_extended(body))
            continue
        upper = head.upper()
        if upper == "D":
            dial = rest[1:].strip()
            commands.append(Command("D", Kind.EXEC, (dial,), rest))
            return commands
        if upper == "&":
            if len(rest) < 2 or not rest[1].isalpha():
                raise AtSyntaxError("bad & command")
            name = "&" + rest[1].upper()
            rest = rest[2:]
        elif upper == "S":
            register, rest = _s_register(rest[1:])
            commands.append(register)
            continue
        elif upper.isalpha():
            name = upper
            rest = rest[1:]
        else:
            raise AtSyntaxError(f"unexpected {head!r}")
        digits = ""
        if rest.startswith("?"):
            commands.append(Command(name, Kind.READ, (), name + "?"))
            rest = rest[1:]
            continue
        if rest.startswith("="):
            rest = rest[1:]
            while rest and rest[0].isdigit():
                digits += rest[0]
                rest = rest[1:]
            commands.append(Command(name, Kind.SET, (digits,), f"{name}={digits}"))
            continue
        while rest and rest[0].isdigit():
            digits += rest[0]
            rest = rest[1:]
        commands.append(Command(name, Kind.EXEC, (digits,) if digits else (), name + digits))
    return commands
