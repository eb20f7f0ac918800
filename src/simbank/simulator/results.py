"""What a command produces: information lines and a final result, or a failure."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

CME_TEXT: dict[int, str] = {
    3: "operation not allowed",
    4: "operation not supported",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    16: "incorrect password",
    30: "no network service",
    50: "incorrect parameters",
    100: "unknown",
}
CMS_TEXT: dict[int, str] = {
    300: "ME failure",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    316: "SIM PUK required",
    321: "invalid memory index",
    331: "no network service",
    500: "unknown error",
}


class ErrorKind(enum.Enum):
    """Which family of error result."""

    PLAIN = "plain"  # always ``ERROR`` (unknown command, bad syntax)
    CME = "cme"  # +CME ERROR (27.007)
    CMS = "cms"  # +CMS ERROR (27.005, SMS commands)


class AtCommandError(Exception):
    """A command failed; formatted according to AT+CMEE."""

    def __init__(self, kind: ErrorKind, code: int = 0, text: str = "ERROR") -> None:
        super().__init__(f"{kind.value} {code}")
        self.kind = kind
        self.code = code
        self.text = text

    def render(self, cmee: int) -> str:
        """``ERROR`` / ``+CME ERROR: 10`` / ``+CME ERROR: SIM not inserted`` (a plain failure
        may carry its own word, e.g. ``COMMAND NOT SUPPORT``)."""
        if self.kind is ErrorKind.PLAIN:
            return self.text
        if cmee == 0:
            return "ERROR"
        prefix = "+CME ERROR" if self.kind is ErrorKind.CME else "+CMS ERROR"
        if cmee == 2:
            table = CME_TEXT if self.kind is ErrorKind.CME else CMS_TEXT
            return f"{prefix}: {table.get(self.code, 'unknown')}"
        return f"{prefix}: {self.code}"


def cme(code: int) -> AtCommandError:
    """A +CME ERROR failure."""
    return AtCommandError(ErrorKind.CME, code)


def cms(code: int) -> AtCommandError:
    """A +CMS ERROR failure."""
    return AtCommandError(ErrorKind.CMS, code)


def plain(text: str = "ERROR") -> AtCommandError:
    """A plain failure: ``ERROR``, or the model's word for an unknown command (A1/D1)."""
    return AtCommandError(ErrorKind.PLAIN, text=text)


@dataclass
class Reply:
    """Information lines, then ``final`` (None: no final result yet, e.g. the SMS prompt)."""

    lines: list[str] = field(default_factory=list)
    final: str | None = "OK"
    prompt: bool = False

    def framed(self) -> str:
        """As a modem writes it on the wire (V.250 framing, ATV1): each line between CR LFs,
        then the final result, then the ``> `` prompt if any."""
        out = "".join(f"\r\n{line}\r\n" for line in self.lines)
        if self.final is not None:
            out += f"\r\n{self.final}\r\n"
        if self.prompt:
            out += "\r\n> "
        return out
