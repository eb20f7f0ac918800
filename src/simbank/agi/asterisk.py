"""Asterisk's side of one FastAGI connection, for tests and the simulator's PBX.

Built from ``res/res_agi.c`` (asterisk/asterisk): :func:`parse_args` is a line-by-line port of
its ``parse_args`` (how Asterisk splits a command line into words), and :class:`AsteriskPeer`
sends what ``launch_netscript`` and ``setup_env`` send, then answers commands as
``agi_handle_command`` does: ``GET VARIABLE`` → ``200 result=1 (<value>)`` or
``200 result=0``, ``SET VARIABLE`` → ``200 result=1``, ``VERBOSE`` → ``200 result=1``, a
wrong word count → the multi-line ``520-`` usage message, an unknown command → ``510``, a
command not allowed on a hung-up channel → ``511``; and ``HANGUP`` inline when the call ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Final

MAX_ARGS: Final = 128
DEAD_OK: Final = frozenset({("GET", "VARIABLE"), ("SET", "VARIABLE"), ("VERBOSE",)})
"""Commands res_agi.c marks usable on a dead channel (among others simbank does not send)."""
_USAGE: Final = {("GET", "VARIABLE"): 3, ("SET", "VARIABLE"): 4, ("VERBOSE",): 3}


def parse_args(line: str) -> list[str]:
    """Asterisk's ``parse_args``: blanks split words, ``"`` toggles quoting, ``\\`` makes the
    next character literal; at most ``MAX_ARGS - 1`` words."""
    words: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                current = []
                words.append("")
                whitespace = False
        elif char in " \t" and not quoted and not escaped:
            whitespace = True
            current = None
        elif char == "\\" and not escaped:
            escaped = True
            continue
        else:
            if whitespace:
                if len(words) >= MAX_ARGS - 1:
                    escaped = False
                    continue
                current = []
                words.append("")
                whitespace = False
            assert current is not None
            current.append(char)
            words[-1] = "".join(current)
        escaped = False
    return words


def environment(
    script: str, args: Sequence[str] = (), *, host: str = "127.0.0.1", port: int = 4573
) -> bytes:
    """The block Asterisk 20 sends for ``AGI(agi://host:port/script,args…)`` (fictional
    channel, caller and extension)."""
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://{host}:{port}/{script}",
        "agi_channel: PJSIP/agent-0000002a",
        "agi_language: en",
        "agi_type: PJSIP",
        "agi_uniqueid: 1700000000.42",
        "agi_version: 20.5.0",
        "agi_callerid: 1001",
        "agi_calleridname: Agent One",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: 15550123",
        "agi_rdnis: unknown",
        "agi_context: outbound",
        "agi_extension: 15550123",
        "agi_priority: 2",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        "agi_threadid: 140000000000000",
        *(f"agi_arg_{n}: {arg}" for n, arg in enumerate(args, 1)),
    ]
    return ("\n".join(lines) + "\n\n").encode()


class AsteriskPeer:
    """One channel's FastAGI connection. ``variables`` is the channel's variables (functions
    such as ``CDR(billsec)`` too); ``SET VARIABLE`` writes it. ``hangup_after``: send
    ``HANGUP`` once that many commands were answered, the channel dead from then on."""

    def __init__(
        self, variables: Mapping[str, str] | None = None, *, hangup_after: int | None = None
    ) -> None:
        self.variables: dict[str, str] = dict(variables or {})
        self.commands: list[list[str]] = []
        self.replies: list[str] = []
        self._hangup_after = hangup_after
        self.dead = False

    def answer(self, line: str) -> list[str]:
        """The reply lines for one command line (what ``agi_handle_command`` writes)."""
        argv = parse_args(line)
        self.commands.append(argv)
        key = next(
            (k for k in _USAGE if tuple(w.upper() for w in argv[: len(k)]) == k),
            None,
        )
        if key is None:
            return ["510 Invalid or unknown command"]
        if self.dead and key not in DEAD_OK:
            return ["511 Command Not Permitted on a dead channel or intercept routine"]
        if len(argv) != _USAGE[key]:
            return [
                "520-Invalid command syntax.  Proper usage follows:",
                f" Usage: {' '.join(key)} …",
                "520 End of proper usage.",
            ]
        if key == ("GET", "VARIABLE"):
            value = self.variables.get(argv[2])
            return ["200 result=0"] if value is None else [f"200 result=1 ({value})"]
        if key == ("SET", "VARIABLE"):
            self.variables[argv[2]] = argv[3]
        return ["200 result=1"]

    async def run(
        self,
        port: int,
        script: str,
        args: Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        block: bytes | None = None,
        timeout_s: float = 10.0,
    ) -> dict[str, str]:
        """Connect, send the environment (``block`` instead, if given), answer commands
        until the server closes; the channel's variables after."""
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(block if block is not None else environment(script, args, port=port))
            await writer.drain()
            while True:
                async with asyncio.timeout(timeout_s):
                    raw = await reader.readline()
                if not raw:
                    break
                lines = self.answer(raw.decode().rstrip("\n"))
                if self._hangup_after is not None and len(self.commands) == self._hangup_after:
                    lines = ["HANGUP", *lines]  # the hangup races the reply: it comes first
                    self.dead = True
                self.replies.extend(lines)
                writer.write("".join(f"{line}\n" for line in lines).encode())
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()
        return self.variables
