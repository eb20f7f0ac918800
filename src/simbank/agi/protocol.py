"""The FastAGI protocol, sans-IO: the environment block in, command lines out, reply lines in.

What Asterisk does on the wire (``res/res_agi.c`` of asterisk/asterisk, read for this module;
the ``FastAGI()``/``AGI()`` application docs say the same in prose):

* ``launch_netscript`` connects to ``agi://host[:port][/script]`` (port 4573 by default) and
  sends ``agi_network: yes`` and, when the URL has a path, ``agi_network_script: <script>``
  (the path as written, a ``?query`` included);
* ``setup_env`` then sends ``agi_<name>: <value>`` lines (``agi_request`` first, then
  ``agi_channel``, ``agi_uniqueid``, ``agi_callerid``, ``agi_extension``, …), one
  ``agi_arg_<n>: <value>`` per argument of the dialplan application (``AGI(url,a,b)`` gives
  ``agi_arg_1: a``, ``agi_arg_2: b``) and an empty line;
* each command is one ``\\n``-terminated line (at most 8 KiB, ``AGI_BUF_LEN``), split into
  words by ``parse_args``: blanks separate words, ``"`` toggles quoting (blanks inside quotes
  are kept), ``\\`` makes the next character literal (``\\"``, ``\\\\``). A line break cannot be
  sent inside a word at all;
* replies: ``200 result=1`` (``SET VARIABLE``), ``200 result=1 (<value>)`` or ``200 result=0``
  (``GET VARIABLE``: set, or not), ``510 Invalid or unknown command``, ``511 Command Not
  Permitted on a dead channel or intercept routine``, ``520 Invalid command syntax.  Proper
  usage not available.`` or a multi-line ``520-Invalid command syntax.  Proper usage
  follows:`` … ``520 End of proper usage.``; some commands first say ``100 result=0
  Trying...``;
* when the channel hangs up, a FastAGI server gets a ``HANGUP`` line "inline with the command
  dialog" (unless ``AGISIGHUP=no``); the dialog goes on (the channel is "dead": ``GET
  VARIABLE`` and ``SET VARIABLE`` still work, others answer 511) until the server closes.

Nothing here reads a socket: :func:`parse_environment` takes the block's lines,
:func:`command` formats one line, :class:`ReplyReader` is fed reply lines and says when a
reply is whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from simbank.errors import SimbankError

MAX_LINE_BYTES: Final = 8192
"""Asterisk reads a command into an 8192-byte buffer (``AGI_BUF_LEN``), the newline included."""
MAX_ENVIRONMENT_LINES: Final = 256
"""Asterisk sends ~25 ``agi_*`` lines plus one per argument (at most 127: ``MAX_ARGS``)."""

_NAME = re.compile(r"agi_[a-z0-9_]+")
_VARIABLE = re.compile(r"[A-Za-z0-9_]+(\([A-Za-z0-9_,.-]*\))?")
_RESULT = re.compile(r"(?P<code>\d{3})(?P<sep>[ -])(?P<rest>.*)")


class AgiProtocolError(SimbankError):
    """What Asterisk (or whoever connected) sent is not the AGI protocol."""


# -- the environment block ----------------------------------------------------------------


@dataclass(frozen=True)
class Environment:
    """The ``agi_*`` block Asterisk sends on connect."""

    values: Mapping[str, str]
    """Every ``agi_<name>`` as sent (names with their ``agi_`` prefix)."""
    args: tuple[str, ...]
    """``agi_arg_1``, ``agi_arg_2``, … in order (stops at the first one missing)."""

    @property
    def script(self) -> str:
        """The script name: ``agi_network_script`` without a ``?query`` or slashes around it
        (``agi://127.0.0.1/authorize`` → ``authorize``); empty if the URL had no path."""
        raw = self.values.get("agi_network_script", "")
        return raw.split("?", 1)[0].strip("/")

    @property
    def channel(self) -> str:
        return self.values.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        return self.values.get("agi_uniqueid", "")

    def arg(self, index: int) -> str | None:
        """Argument ``index`` (1-based), ``None`` if absent or empty (``AGI(url,,x)``)."""
        if 1 <= index <= len(self.args):
            return self.args[index - 1] or None
        return None


def parse_environment(lines: Iterable[str]) -> Environment:
    """The block's lines (without their newline, the closing empty line excluded) → an
    :class:`Environment`. Anything but ``agi_<name>: <value>`` lines is
    :class:`AgiProtocolError`, and so is a block without ``agi_request`` (every Asterisk
    sends it first: something else connected)."""
    values: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if number > MAX_ENVIRONMENT_LINES:
            raise AgiProtocolError(f"more than {MAX_ENVIRONMENT_LINES} environment lines")
        name, sep, value = line.partition(":")
        if not sep or not _NAME.fullmatch(name):
            raise AgiProtocolError(f"environment line {number} is not 'agi_<name>: <value>'")
        if name in values:
            raise AgiProtocolError(f"environment line {number} repeats {name}")
        values[name] = value.removeprefix(" ")
    if "agi_request" not in values:
        raise AgiProtocolError("the environment has no agi_request: not Asterisk")
    args: list[str] = []
    while (arg := values.get(f"agi_arg_{len(args) + 1}")) is not None:
        args.append(arg)
    return Environment(values=values, args=tuple(args))


# -- commands -----------------------------------------------------------------------------


def quote(value: str) -> str:
    """``value`` as one quoted AGI word: ``"`` and ``\\`` escaped with ``\\``, the whole in
    double quotes (``parse_args`` gives back exactly ``value``). A line break or NUL cannot
    travel inside a word: :class:`ValueError` (use :func:`printable` on free text)."""
    if any(c in value for c in "\r\n\0"):
        raise ValueError("an AGI word cannot hold a line break or NUL")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def printable(text: str, limit: int = 512) -> str:
    """Free text (an error message) made fit for :func:`quote`: control characters become
    blanks, the length at most ``limit`` characters."""
    cleaned = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _variable(name: str) -> str:
    if not _VARIABLE.fullmatch(name):
        raise ValueError(f"not a channel variable or function call: {name!r}")
    return name


def command(*words: str) -> bytes:
    """One command line: the first words (the verb) bare, as the caller wrote them, the rest
    via the helpers below. Over :data:`MAX_LINE_BYTES`: :class:`ValueError`."""
    line = (" ".join(words) + "\n").encode("utf-8")
    if len(line) > MAX_LINE_BYTES:
        raise ValueError(f"an AGI command is at most {MAX_LINE_BYTES} bytes")
    return line


def get_variable(name: str) -> bytes:
    """``GET VARIABLE <name>``: a variable (``DIALSTATUS``) or a function (``CDR(billsec)``)."""
    return command("GET", "VARIABLE", _variable(name))


def set_variable(name: str, value: str) -> bytes:
    """``SET VARIABLE <name> "<value>"``."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"not a channel variable name: {name!r}")
    return command("SET", "VARIABLE", name, quote(value))


def verbose(message: str, level: int = 1) -> bytes:
    """``VERBOSE "<message>" <level>``: a line on the Asterisk console."""
    return command("VERBOSE", quote(printable(message)), str(level))


# -- replies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One whole reply: ``code`` (200, 510, 511, 520, …), ``result`` (the ``result=``
    number as text, ``None`` if the line had none), ``value`` (the ``(…)`` data, ``None`` if
    none) and every line it took."""

    code: int
    result: str | None = None
    value: str | None = None
    lines: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def text(self) -> str:
        return " / ".join(self.lines)


@dataclass(frozen=True)
class Hangup:
    """The ``HANGUP`` line: the channel hung up (the dialog goes on, on a dead channel)."""


def parse_result_line(line: str) -> Reply:
    """One final reply line (``200 result=1 (quectel0)``, ``510 Invalid or unknown command``).
    A line that is neither a 3-digit code nor ``HANGUP`` is :class:`AgiProtocolError`."""
    match = _RESULT.fullmatch(line)
    if match is None or match["sep"] != " ":
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    code, rest = int(match["code"]), match["rest"]
    if not rest.startswith("result="):
        return Reply(code, lines=(line,))
    result, _, data = rest[len("result=") :].partition(" ")
    value: str | None = None
    if data.startswith("("):
        # "(value)" or "(value) endpos=1234": the value may hold blanks and parentheses, so
        # it runs to the last ")" of the line
        end = data.rfind(")")
        value = data[1:end] if end > 0 else data[1:]
    return Reply(code, result=result, value=value, lines=(line,))


class ReplyReader:
    """Fed reply lines one by one; :meth:`feed` returns a :class:`Reply` when one is whole,
    :class:`Hangup` for the ``HANGUP`` notification, ``None`` while more lines are due (the
    body of a ``520-`` usage message, after ``100 … Trying...``)."""

    def __init__(self) -> None:
        self._usage: list[str] | None = None

    def feed(self, line: str) -> Reply | Hangup | None:
        line = line.rstrip("\r\n")
        if self._usage is not None:
            self._usage.append(line)
            if line.startswith("520 "):
                lines, self._usage = tuple(self._usage), None
                return Reply(520, lines=lines)
            if len(self._usage) > MAX_ENVIRONMENT_LINES:
                raise AgiProtocolError("a 520 usage message that never ends")
            return None
        if line == "HANGUP":
            return Hangup()
        if line.startswith("520-"):
            self._usage = [line]
            return None
        reply = parse_result_line(line)
        if reply.code == 100:
            return None
        return reply
