"""One FastAGI connection's command dialog: send a line, read until its reply is whole.

The reads go through :class:`~simbank.agi.protocol.ReplyReader`, so a ``HANGUP`` notification
between two replies is noted (:attr:`AgiSession.hung_up`) and never mistaken for a reply.
Every read has a timeout; a line over the stream's limit, a reply that is not AGI or the
peer going away is :class:`AgiProtocolError` / :class:`AgiClosed` for the server to log.
"""

from __future__ import annotations

import asyncio
from typing import Final

import structlog

from simbank.agi import protocol
from simbank.agi.protocol import AgiProtocolError, Hangup, Reply

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_S: Final = 10.0


class AgiClosed(AgiProtocolError):
    """Asterisk closed the connection (or it broke) before the reply came."""


class AgiCommandFailed(AgiProtocolError):
    """Asterisk answered a command with something other than 200 (510, 511, 520, …)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"AGI command failed: {reply.text}", raw=reply.text, code=reply.code)
        self.reply = reply


async def read_line(reader: asyncio.StreamReader, timeout_s: float) -> str:
    """One line without its terminator. EOF before a whole line: :class:`AgiClosed`; a line
    over the reader's limit: :class:`AgiProtocolError`; nothing for ``timeout_s``:
    :class:`TimeoutError`."""
    try:
        async with asyncio.timeout(timeout_s):
            raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        raise AgiClosed("the connection closed mid-dialog") from exc
    except asyncio.LimitOverrunError as exc:
        raise AgiProtocolError("a line longer than the AGI limit") from exc
    except (ConnectionError, OSError) as exc:
        raise AgiClosed(f"the connection broke: {exc}") from exc
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


class AgiSession:
    """The dialog on one connection, after the environment block was read."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout_s = timeout_s
        self.hung_up = False
        """A ``HANGUP`` line came: the channel is gone (variables can still be read/set)."""

    async def send(self, line: bytes) -> Reply:
        """Send one command line (from :mod:`simbank.agi.protocol`) and return its reply,
        whatever its code."""
        try:
            self._writer.write(line)
            async with asyncio.timeout(self._timeout_s):
                await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise AgiClosed(f"the connection broke: {exc}") from exc
        replies = protocol.ReplyReader()
        while True:
            event = replies.feed(await read_line(self._reader, self._timeout_s))
            if isinstance(event, Hangup):
                if not self.hung_up:
                    log.debug("agi_channel_hung_up")
                self.hung_up = True
            elif event is not None:
                return event

    async def get(self, name: str) -> str | None:
        """A channel variable or function; ``None`` when unset (``200 result=0``) or empty."""
        reply = await self.send(protocol.get_variable(name))
        if not reply.ok:
            raise AgiCommandFailed(reply)
        if reply.result != "1" or not reply.value:
            return None
        return reply.value

    async def set(self, name: str, value: str) -> None:
        reply = await self.send(protocol.set_variable(name, value))
        if not reply.ok:
            raise AgiCommandFailed(reply)

    async def set_all(self, variables: dict[str, str]) -> None:
        for name, value in variables.items():
            await self.set(name, value)

    async def verbose(self, message: str, level: int = 1) -> None:
        """A line on the Asterisk console; its reply is not checked (it is a courtesy)."""
        await self.send(protocol.verbose(message, level))
